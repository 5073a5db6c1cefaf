//! VPC, subnets, internet gateway, route tables and security groups against the moto emulator.

use std::sync::OnceLock;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification,
};
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::diff::normalize;
use infra_core::model::Declared;
use infra_core::prelude::*;
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Kind, Observed, Provider, Resource};
use infra_tests::Emulator;

mod support;

const REGION: &str = "ap-northeast-2";

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let emulator = Emulator::start();
        emulator.set_process_env();
        emulator
    })
}

async fn provider() -> AwsProvider {
    emulator();
    AwsProvider::connect(REGION, AwsOptions::default()).await
}

async fn raw_ec2() -> aws_sdk_ec2::Client {
    emulator();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&config)
}

fn ctx<'a>(stack: &'a Stack, resolved: &'a Resolved) -> Context<'a> {
    Context {
        stack: &stack.name,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait: false,
    }
}

fn declared(stack: &Stack, kind: Kind, id: &str) -> Declared {
    stack
        .get(&Address::new(kind, id))
        .unwrap_or_else(|| panic!("{kind}.{id} is declared"))
        .clone()
}

/// Create every declared resource in declaration order (dependencies first), as apply would.
async fn create_all(p: &AwsProvider, stack: &Stack) -> Resolved {
    let mut resolved = Resolved::default();
    for d in &stack.resources {
        let observed = p
            .create(&ctx(stack, &resolved), d)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", d.address()));
        assert_eq!(observed.address, d.address());
        resolved.insert(observed);
    }
    resolved
}

async fn discover(p: &AwsProvider, stack: &Stack) -> Vec<Observed> {
    p.discover(stack).await.expect("discover")
}

fn find<'a>(found: &'a [Observed], kind: Kind, id: &str) -> &'a Observed {
    found
        .iter()
        .find(|o| o.address == Address::new(kind, id))
        .unwrap_or_else(|| panic!("{kind}.{id} discovered; found {found:?}"))
}

/// The engine's comparison: both sides normalized (sorted sets).
fn assert_same(desired: &Resource, observed: &Resource) {
    let (mut d, mut o) = (desired.clone(), observed.clone());
    normalize(&mut d, &mut o);
    assert_eq!(o, d);
}

fn assert_all_match(stack: &Stack, found: &[Observed]) {
    assert_eq!(found.len(), stack.resources.len(), "found {found:?}");
    for d in &stack.resources {
        assert_same(&d.resource, &find(found, d.resource.kind(), &d.id).resource);
    }
}

async fn delete_all(p: &AwsProvider, stack: &Stack, resolved: &Resolved) {
    for d in stack.resources.iter().rev() {
        let prior = resolved.get(&d.address()).expect("created");
        p.delete(&ctx(stack, resolved), prior, DeleteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", d.address()));
    }
    assert!(discover(p, stack).await.is_empty());
}

fn network_stack(name: &str) -> Stack {
    let mut s = Stack::new(name, REGION);
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&a)
            .associate(&c),
    );
    s
}

#[tokio::test]
async fn vpc_subnets_gateway_and_route_table_round_trip() {
    let p = provider().await;
    let ec2 = raw_ec2().await;
    let mut stack = network_stack("net-roundtrip");
    let mut resolved = create_all(&p, &stack).await;
    let found = discover(&p, &stack).await;
    assert_all_match(&stack, &found);

    // In place: DNS hostnames off, one subnet private.
    let vpc = Vpc::new("10.0.0.0/16").dns_hostnames(false);
    let subnet = Subnet::private(&Ref::from_id("main"), "10.0.2.0/24", "ap-northeast-2c");
    for (kind, id, resource, field) in [
        (
            Kind::Vpc,
            "main",
            Resource::from(vpc),
            "enable_dns_hostnames",
        ),
        (
            Kind::Subnet,
            "public_c",
            Resource::from(subnet),
            "map_public_ip_on_launch",
        ),
    ] {
        let d = Declared {
            id: id.into(),
            resource,
        };
        let prior = resolved.get(&Address::new(kind, id)).unwrap().clone();
        let updated = p
            .update(&ctx(&stack, &resolved), &d, &prior, &[field.to_string()])
            .await
            .unwrap();
        assert_same(&d.resource, &updated.resource);
        resolved.insert(updated);
        let slot = stack
            .resources
            .iter_mut()
            .find(|r| r.address() == d.address())
            .unwrap();
        *slot = d;
    }
    assert_all_match(&stack, &discover(&p, &stack).await);

    // Out of band: a subnet association removed, the subnet's public IPs turned back on.
    let table = resolved
        .get(&Address::new(Kind::RouteTable, "public"))
        .unwrap();
    let subnet_a = resolved
        .get(&Address::new(Kind::Subnet, "public_a"))
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&table.physical_id)
        .send()
        .await
        .unwrap();
    let association = tables.route_tables()[0]
        .associations()
        .iter()
        .find(|a| a.subnet_id() == Some(subnet_a.physical_id.as_str()))
        .and_then(|a| a.route_table_association_id())
        .expect("public_a is associated")
        .to_string();
    ec2.disassociate_route_table()
        .association_id(&association)
        .send()
        .await
        .unwrap();
    let subnet_c = resolved
        .get(&Address::new(Kind::Subnet, "public_c"))
        .unwrap();
    ec2.modify_subnet_attribute()
        .subnet_id(&subnet_c.physical_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let found = discover(&p, &stack).await;
    let Resource::RouteTable(seen) = &find(&found, Kind::RouteTable, "public").resource else {
        panic!("route table expected")
    };
    assert_eq!(seen.subnets, vec![Ref::from_id("public_c")]);
    assert_eq!(
        seen.routes.len(),
        1,
        "only the gateway route; `local` is not reported"
    );
    let Resource::Subnet(seen) = &find(&found, Kind::Subnet, "public_c").resource else {
        panic!("subnet expected")
    };
    assert!(seen.map_public_ip_on_launch);

    // The update puts the association back.
    let d = declared(&stack, Kind::RouteTable, "public");
    let prior = find(&found, Kind::RouteTable, "public").clone();
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &d,
            &prior,
            &["subnets".to_string()],
        )
        .await
        .unwrap();
    assert_same(&d.resource, &updated.resource);

    // A route to the gateway removed from the declaration is removed from the table.
    let mut d = d;
    if let Resource::RouteTable(t) = &mut d.resource {
        t.routes.clear();
    }
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &d,
            &updated,
            &["routes".to_string()],
        )
        .await
        .unwrap();
    assert_same(&d.resource, &updated.resource);
    resolved.insert(updated);

    delete_all(&p, &stack, &resolved).await;
    let gateway = resolved
        .get(&Address::new(Kind::InternetGateway, "gateway"))
        .unwrap();
    let gone = ec2
        .describe_internet_gateways()
        .internet_gateway_ids(&gateway.physical_id)
        .send()
        .await;
    assert!(
        gone.map(|out| out.internet_gateways().is_empty())
            .unwrap_or(true),
        "the gateway is deleted"
    );
}

fn groups_stack(name: &str) -> Stack {
    let mut s = Stack::new(name, REGION);
    let vpc = s.add("main", Vpc::new("10.1.0.0/16"));
    let alb = s.add(
        "alb",
        SecurityGroup::new(&vpc, "Load balancer: HTTP and HTTPS from anywhere")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere().describe("https")),
    );
    let web = s.add(
        "web",
        SecurityGroup::new(&vpc, "Web tier: 3000 from the load balancer")
            .ingress(Rule::tcp(3000).from_group(&alb).describe("from the ALB"))
            .ingress(Rule::tcp(3000).from_cidr("10.9.0.0/16")),
    );
    s.add(
        "db",
        SecurityGroup::new(&vpc, "Database: MySQL from the web tier, no egress")
            .ingress(Rule::tcp(3306).from_group(&web))
            .ingress(Rule::all().from_ipv6_cidr("2001:db8::/32"))
            .no_egress(),
    );
    s
}

#[tokio::test]
async fn security_groups_round_trip_with_group_peers() {
    let p = provider().await;
    let ec2 = raw_ec2().await;
    let mut stack = groups_stack("net-groups");
    let mut resolved = create_all(&p, &stack).await;
    let found = discover(&p, &stack).await;
    assert_all_match(&stack, &found);

    let db = resolved
        .get(&Address::new(Kind::SecurityGroup, "db"))
        .unwrap()
        .clone();
    let described = ec2
        .describe_security_groups()
        .group_ids(&db.physical_id)
        .send()
        .await
        .unwrap();
    let group = &described.security_groups()[0];
    assert!(
        group.ip_permissions_egress().is_empty(),
        "the default egress rule is revoked"
    );
    assert!(group.group_name().unwrap().starts_with("net-groups-db-"));

    // In place: a rule's description changes, a rule is added, egress narrowed (its allow-all
    // rule revoked). The description changes on a CIDR rule: moto 5.2 compares group-sourced
    // rules including their description, so it silently ignores
    // UpdateSecurityGroupRuleDescriptionsIngress for them (AWS does not).
    let web = Ref::from_id("web");
    let alb = Ref::from_id("alb");
    let d = Declared {
        id: "web".into(),
        resource: SecurityGroup::new(
            &Ref::from_id("main"),
            "Web tier: 3000 from the load balancer",
        )
        .ingress(Rule::tcp(3000).from_group(&alb).describe("from the ALB"))
        .ingress(Rule::tcp(3000).from_cidr("10.9.0.0/16").describe("office"))
        .ingress(Rule::tcp_range(9000, 9100).from_group(&web))
        .egress(Rule::tcp(443).to_anywhere())
        .into(),
    };
    let prior = resolved.get(&d.address()).unwrap().clone();
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &d,
            &prior,
            &["ingress".to_string(), "egress".to_string()],
        )
        .await
        .unwrap();
    assert_same(&d.resource, &updated.resource);
    resolved.insert(updated);
    let address = d.address();
    *stack
        .resources
        .iter_mut()
        .find(|r| r.address() == address)
        .unwrap() = d;
    assert_all_match(&stack, &discover(&p, &stack).await);

    // Out of band: the group-to-group rule on `db` is revoked.
    let web_id = resolved
        .get(&Address::new(Kind::SecurityGroup, "web"))
        .unwrap()
        .physical_id
        .clone();
    ec2.revoke_security_group_ingress()
        .group_id(&db.physical_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(3306)
                .to_port(3306)
                // moto matches a group peer's description too (AWS ignores it).
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(&web_id)
                        .description("from ec2_security_group.web")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let found = discover(&p, &stack).await;
    let Resource::SecurityGroup(seen) = &find(&found, Kind::SecurityGroup, "db").resource else {
        panic!("security group expected")
    };
    assert_eq!(
        seen.ingress,
        vec![Rule::all()
            .from_ipv6_cidr("2001:db8::/32")
            .describe("from 2001:db8::/32")]
    );

    // Out of band: an extra CIDR rule on `alb` shows up, in model form.
    let alb_id = resolved
        .get(&Address::new(Kind::SecurityGroup, "alb"))
        .unwrap()
        .physical_id
        .clone();
    ec2.authorize_security_group_ingress()
        .group_id(&alb_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .description("ssh")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let found = discover(&p, &stack).await;
    let Resource::SecurityGroup(seen) = &find(&found, Kind::SecurityGroup, "alb").resource else {
        panic!("security group expected")
    };
    assert!(seen
        .ingress
        .contains(&Rule::tcp(22).from_anywhere().describe("ssh")));

    // Reconciling puts both back.
    for id in ["db", "alb"] {
        let d = declared(&stack, Kind::SecurityGroup, id);
        let prior = find(&found, Kind::SecurityGroup, id).clone();
        let updated = p
            .update(
                &ctx(&stack, &resolved),
                &d,
                &prior,
                &["ingress".to_string()],
            )
            .await
            .unwrap();
        assert_same(&d.resource, &updated.resource);
    }
    assert_all_match(&stack, &discover(&p, &stack).await);

    delete_all(&p, &stack, &resolved).await;
}

#[tokio::test]
async fn a_security_group_is_not_read_back_after_its_rules_are_set() {
    let (p, proxy) = support::counted_provider(emulator(), AwsOptions::default()).await;
    let stack = groups_stack("net-calls");
    let resolved = create_all(&p, &stack).await;
    // Per new group: the lookup before the create, and one read of the rules AWS gave it.
    assert_eq!(proxy.count("CreateSecurityGroup"), 3);
    assert_eq!(proxy.count("DescribeSecurityGroups"), 2 * 3);

    // What create returned is what discovery reports, so a plan right after is empty.
    let found = discover(&p, &stack).await;
    assert_all_match(&stack, &found);
    for d in &stack.resources {
        assert_eq!(
            find(&found, d.resource.kind(), &d.id),
            resolved.get(&d.address()).unwrap(),
            "{} as created and as discovered",
            d.address()
        );
    }

    // An update reads the rules once, before changing them.
    proxy.clear();
    let d = Declared {
        id: "alb".into(),
        resource: SecurityGroup::new(
            &Ref::from_id("main"),
            "Load balancer: HTTP and HTTPS from anywhere",
        )
        .ingress(Rule::tcp(443).from_anywhere().describe("https"))
        .ingress(Rule::tcp(8443).from_cidr("10.8.0.0/16"))
        .egress(Rule::tcp(443).to_anywhere())
        .into(),
    };
    let prior = resolved.get(&d.address()).unwrap();
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &d,
            prior,
            &["ingress".to_string(), "egress".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(proxy.count("DescribeSecurityGroups"), 1);
    let mut stack = stack;
    *stack
        .resources
        .iter_mut()
        .find(|r| r.address() == d.address())
        .unwrap() = d.clone();
    let found = discover(&p, &stack).await;
    assert_all_match(&stack, &found);
    assert_eq!(find(&found, Kind::SecurityGroup, "alb"), &updated);

    let mut resolved = resolved;
    resolved.insert(updated);
    delete_all(&p, &stack, &resolved).await;
}

#[tokio::test]
async fn create_adopts_a_tagged_resource_left_by_an_interrupted_apply() {
    let p = provider().await;
    let ec2 = raw_ec2().await;
    let mut stack = Stack::new("net-adopt", REGION);
    let vpc = stack.add("main", Vpc::new("10.2.0.0/16"));
    stack.add("web", SecurityGroup::new(&vpc, "Web tier"));
    let tags = |id: &str| {
        TagSpecification::builder()
            .tags(Tag::builder().key("infra:stack").value("net-adopt").build())
            .tags(Tag::builder().key("infra:id").value(id).build())
    };
    // What a create whose response was lost leaves behind.
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.2.0.0/16")
        .tag_specifications(tags("main").resource_type(ResourceType::Vpc).build())
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();

    let resolved = create_all(&p, &stack).await;
    assert_eq!(
        resolved
            .get(&Address::new(Kind::Vpc, "main"))
            .unwrap()
            .physical_id,
        vpc_id
    );
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:infra:stack")
                .values("net-adopt")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "no second VPC");
    // Creating again (a retried apply step) finds the group instead of making another one.
    let again = p
        .create(
            &ctx(&stack, &resolved),
            &declared(&stack, Kind::SecurityGroup, "web"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.physical_id,
        resolved
            .get(&Address::new(Kind::SecurityGroup, "web"))
            .unwrap()
            .physical_id
    );
    assert_all_match(&stack, &discover(&p, &stack).await);
    delete_all(&p, &stack, &resolved).await;
}

#[tokio::test]
async fn read_and_adopt_an_untagged_vpc() {
    let p = provider().await;
    let ec2 = raw_ec2().await;
    let mut stack = Stack::new("net-import", REGION);
    stack.add("main", Vpc::new("10.3.0.0/16"));
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.3.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    assert!(discover(&p, &stack).await.is_empty());
    let address = Address::new(Kind::Vpc, "main");
    let read = p
        .read(&stack, &address, &vpc_id)
        .await
        .unwrap()
        .expect("found by id");
    // A fresh VPC has DNS hostnames off; the model's default is on.
    assert_eq!(
        read.resource,
        Resource::from(Vpc::new("10.3.0.0/16").dns_hostnames(false))
    );
    let resolved = Resolved::default();
    p.adopt(&ctx(&stack, &resolved), &read).await.unwrap();
    let found = discover(&p, &stack).await;
    assert_eq!(find(&found, Kind::Vpc, "main").physical_id, vpc_id);
    assert!(p
        .read(&stack, &address, "vpc-0000000000000000f")
        .await
        .unwrap()
        .is_none());
}
