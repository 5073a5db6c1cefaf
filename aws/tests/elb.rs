//! ELBv2 against the moto emulator: the reference stack's target groups, load balancer,
//! listeners and rule — create, discover, update in place, out-of-band drift, delete.

use std::sync::OnceLock;

use infra_aws::{AwsOptions, AwsProvider};
use infra_core::model::Declared;
use infra_core::prelude::*;
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Kind, Observed, Provider};
use infra_tests::Emulator;

const REGION: &str = "ap-northeast-2";

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let emu = Emulator::start();
        emu.set_process_env();
        emu
    })
}

async fn provider() -> AwsProvider {
    emulator();
    AwsProvider::connect(REGION, AwsOptions::default()).await
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

/// Create every declared resource in declaration order (which is dependency order here).
async fn create_all(p: &AwsProvider, stack: &Stack) -> Resolved {
    let mut resolved = Resolved::default();
    for d in &stack.resources {
        let created = p
            .create(&ctx(stack, &resolved), d)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", d.address()));
        let ready = p
            .wait_ready(&ctx(stack, &resolved), &created)
            .await
            .unwrap_or_else(|e| panic!("wait for {}: {e}", d.address()));
        resolved.insert(ready);
    }
    resolved
}

fn find<'a>(observed: &'a [Observed], kind: Kind, id: &str) -> Option<&'a Observed> {
    observed
        .iter()
        .find(|o| o.address == Address::new(kind, id))
}

/// Sort what the engine compares as sets, so equality is the engine's equality.
fn normalized(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    if let Resource::LoadBalancer(lb) = &mut r {
        lb.subnets.sort();
        lb.security_groups.sort();
    }
    r
}

fn is_elb(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::TargetGroup | Kind::LoadBalancer | Kind::Listener | Kind::ListenerRule
    )
}

/// `resource` with the physical ids of `resolved`'s resources replaced by their logical ids, as
/// the provider's `read` gives it.
fn relinked(resolved: &Resolved, own: &str, resource: &Resource) -> Resource {
    fn rewrite(value: &mut serde_json::Value, resolved: &Resolved, own: &str) {
        match value {
            serde_json::Value::String(s) if s != own => {
                if let Some(address) = resolved.logical_id(s) {
                    *s = address.id.clone();
                }
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|v| rewrite(v, resolved, own))
            }
            serde_json::Value::Object(map) => {
                map.values_mut().for_each(|v| rewrite(v, resolved, own))
            }
            _ => {}
        }
    }
    let mut value = serde_json::to_value(resource).unwrap();
    rewrite(&mut value, resolved, own);
    normalized(&serde_json::from_value(value).unwrap())
}

/// What a create or update returned, built from its write calls' answers, is what discovery
/// reports afterwards (its references relinked to logical ids, as discovery gives them).
fn assert_returned_as_discovered(observed: &[Observed], resolved: &Resolved, returned: &Observed) {
    let mut discovered = find(observed, returned.address.kind, &returned.address.id)
        .unwrap_or_else(|| panic!("{} not discovered", returned.address))
        .clone();
    discovered.resource = normalized(&discovered.resource);
    let mut returned = returned.clone();
    returned.resource = relinked(resolved, &returned.physical_id, &returned.resource);
    assert_eq!(returned, discovered);
}

/// Every ELBv2 resource of `stack` is discovered exactly as declared.
async fn assert_discovered_as_declared(p: &AwsProvider, stack: &Stack) -> Vec<Observed> {
    let observed = p.discover(stack).await.expect("discover");
    for d in &stack.resources {
        if !is_elb(d.resource.kind()) {
            continue;
        }
        let o = find(&observed, d.resource.kind(), &d.id)
            .unwrap_or_else(|| panic!("{} not discovered", d.address()));
        assert_eq!(
            normalized(&o.resource),
            normalized(&d.resource),
            "{}",
            d.address()
        );
        assert!(o.attributes["arn"].starts_with("arn:aws:elasticloadbalancing:"));
    }
    observed
}

fn network(s: &mut Stack) -> (Ref<Vpc>, Ref<Subnet>, Ref<Subnet>, Ref<SecurityGroup>) {
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    let sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "Load balancer: HTTP and HTTPS from anywhere")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere()),
    );
    (vpc, a, c, sg)
}

/// The reference stack's load-balancing part, under its own stack name.
fn closet(name: &str) -> Stack {
    let mut s = Stack::new(name, REGION);
    let (vpc, a, c, sg) = network(&mut s);
    let cert = s.add("site", Certificate::request("closet.example.com"));
    let frontend = s.add(
        "frontend",
        TargetGroup::http(&vpc, 3000)
            .health_check(HealthCheck::http("/").port(3000))
            .deregistration_delay(30),
    );
    let backend = s.add(
        "backend",
        TargetGroup::http(&vpc, 8080)
            .health_check(HealthCheck::http("/api/health").port(8080))
            .deregistration_delay(30),
    );
    let alb = s.add("alb", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
    s.add("http", Listener::http(&alb, 80));
    let https = s.add("https", Listener::https(&alb, &cert).forward(&frontend));
    s.add(
        "api",
        ListenerRule::new(&https, 10)
            .path("/api/*")
            .forward(&backend),
    );
    s
}

fn replace(stack: &mut Stack, kind: Kind, id: &str, resource: Resource) {
    let d = stack
        .resources
        .iter_mut()
        .find(|d| d.id == id && d.resource.kind() == kind)
        .expect("declared");
    d.resource = resource;
}

#[tokio::test(flavor = "multi_thread")]
async fn closet_load_balancing_round_trip() {
    let p = provider().await;
    let mut stack = closet("elb-closet");
    let mut resolved = create_all(&p, &stack).await;

    // Create -> discover equals desired, with the attributes outputs use, and what each create
    // returned.
    let observed = assert_discovered_as_declared(&p, &stack).await;
    for o in resolved.iter().filter(|o| is_elb(o.address.kind)) {
        assert_returned_as_discovered(&observed, &resolved, o);
    }
    let alb = find(&observed, Kind::LoadBalancer, "alb").unwrap();
    assert!(!alb.attributes["dns_name"].is_empty());
    assert_eq!(alb.attributes["status"], "active");

    // In-place updates: health-check protocol and port, idle timeout, default action, rule path
    // and priority.
    let changes: [(Kind, &str, Resource, &[&str]); 4] = [
        (
            Kind::TargetGroup,
            "backend",
            TargetGroup::http(&Ref::from_id("main"), 8080)
                .health_check(HealthCheck::https("/api/health").port(9090))
                .deregistration_delay(10)
                .into(),
            &["health_check", "deregistration_delay_seconds"],
        ),
        (
            Kind::LoadBalancer,
            "alb",
            LoadBalancer::internet_facing(
                &[&Ref::from_id("public_a"), &Ref::from_id("public_c")],
                &[&Ref::from_id("alb")],
            )
            .idle_timeout(120)
            .into(),
            &["idle_timeout_seconds"],
        ),
        (
            Kind::Listener,
            "http",
            Listener::http(&Ref::from_id("alb"), 80)
                .default_action(ListenerAction::fixed_response(503, "maintenance"))
                .into(),
            &["default_action"],
        ),
        (
            Kind::ListenerRule,
            "api",
            ListenerRule::new(&Ref::from_id("https"), 20)
                .path("/v2/*")
                .host("api.closet.example.com")
                .forward(&Ref::from_id("backend"))
                .into(),
            &["priority", "conditions"],
        ),
    ];
    let mut returned = Vec::new();
    for (kind, id, resource, changed) in changes {
        replace(&mut stack, kind, id, resource);
        let desired = declared(&stack, kind, id);
        let prior = resolved.get(&desired.address()).unwrap().clone();
        let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
        let updated = p
            .update(&ctx(&stack, &resolved), &desired, &prior, &changed)
            .await
            .unwrap_or_else(|e| panic!("update {}: {e}", desired.address()));
        assert_eq!(updated.physical_id, prior.physical_id);
        resolved.insert(updated);
        returned.push(desired.address());
    }
    let observed = assert_discovered_as_declared(&p, &stack).await;
    for address in &returned {
        assert_returned_as_discovered(&observed, &resolved, resolved.get(address).unwrap());
    }

    // Out of band: someone points the backend health check at another port by hand.
    let backend_arn = resolved
        .get(&Address::new(Kind::TargetGroup, "backend"))
        .unwrap()
        .physical_id
        .clone();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    let raw = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    raw.modify_target_group()
        .target_group_arn(&backend_arn)
        .health_check_port("7070")
        .send()
        .await
        .expect("raw ModifyTargetGroup");
    let observed = p.discover(&stack).await.expect("discover");
    let Resource::TargetGroup(backend) = &find(&observed, Kind::TargetGroup, "backend")
        .unwrap()
        .resource
    else {
        panic!("target group expected");
    };
    assert_eq!(backend.health_check.port, HealthCheckPort::Port(7070));

    // Delete in reverse dependency order; nothing of it is discovered afterwards.
    for d in stack.resources.iter().rev() {
        let prior = resolved.remove(&d.address()).unwrap();
        p.delete(&ctx(&stack, &resolved), &prior, DeleteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", d.address()));
    }
    let observed = p.discover(&stack).await.expect("discover");
    assert!(observed.is_empty(), "left over: {observed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_protection_blocks_delete_until_turned_off() {
    let p = provider().await;
    let mut stack = Stack::new("elb-protected", REGION);
    let (_, a, c, sg) = network(&mut stack);
    stack.add(
        "alb",
        LoadBalancer::internal(&[&a, &c], &[&sg])
            .deletion_protection(true)
            .drop_invalid_header_fields(false),
    );
    let mut resolved = create_all(&p, &stack).await;
    assert_discovered_as_declared(&p, &stack).await;

    let address = Address::new(Kind::LoadBalancer, "alb");
    let prior = resolved.get(&address).unwrap().clone();
    let err = p
        .delete(&ctx(&stack, &resolved), &prior, DeleteOptions::default())
        .await
        .expect_err("deletion protection must block the delete");
    assert!(err.to_string().contains("`deletion_protection`"), "{err}");
    assert!(p
        .discover(&stack)
        .await
        .unwrap()
        .iter()
        .any(|o| o.address == address));

    replace(
        &mut stack,
        Kind::LoadBalancer,
        "alb",
        LoadBalancer::internal(&[&a, &c], &[&sg])
            .drop_invalid_header_fields(false)
            .into(),
    );
    let desired = declared(&stack, Kind::LoadBalancer, "alb");
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &desired,
            &prior,
            &["deletion_protection".to_string()],
        )
        .await
        .expect("turn deletion protection off");
    resolved.insert(updated.clone());
    p.delete(&ctx(&stack, &resolved), &updated, DeleteOptions::default())
        .await
        .expect("delete once unprotected");
    for d in stack.resources.iter().rev().skip(1) {
        let prior = resolved.remove(&d.address()).unwrap();
        p.delete(&ctx(&stack, &resolved), &prior, DeleteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", d.address()));
    }
    assert!(p.discover(&stack).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_create_adopts_the_tagged_listener_instead_of_duplicating_it() {
    let p = provider().await;
    let mut stack = Stack::new("elb-idempotent", REGION);
    let (vpc, a, c, sg) = network(&mut stack);
    let tg = stack.add("web", TargetGroup::http(&vpc, 3000));
    let alb = stack.add("alb", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
    stack.add("http", Listener::http(&alb, 80).forward(&tg));
    let resolved = create_all(&p, &stack).await;

    // Creating the same declarations again (a retry after a lost answer) finds what exists.
    let mut returned = Vec::new();
    for kind in [Kind::TargetGroup, Kind::LoadBalancer, Kind::Listener] {
        let d = stack
            .resources
            .iter()
            .find(|d| d.resource.kind() == kind)
            .unwrap();
        let again = p
            .create(&ctx(&stack, &resolved), d)
            .await
            .expect("second create");
        assert_eq!(
            again.physical_id,
            resolved.get(&d.address()).unwrap().physical_id,
            "{}",
            d.address()
        );
        returned.push(again);
    }
    let observed = p.discover(&stack).await.unwrap();
    for again in &returned {
        assert_returned_as_discovered(&observed, &resolved, again);
    }
    let listeners = observed
        .iter()
        .filter(|o| o.address.kind == Kind::Listener)
        .count();
    assert_eq!(listeners, 1);

    let mut resolved = resolved;
    for d in stack.resources.iter().rev() {
        let prior = resolved.remove(&d.address()).unwrap();
        p.delete(&ctx(&stack, &resolved), &prior, DeleteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", d.address()));
    }
}

fn tag(key: &str, value: &str) -> aws_sdk_elasticloadbalancingv2::types::Tag {
    aws_sdk_elasticloadbalancingv2::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_goes_by_ownership_tags_not_by_names() {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, LoadBalancerSchemeEnum, ProtocolEnum,
        RuleCondition,
    };
    use infra_core::provider::{TAG_ID, TAG_STACK};

    let p = provider().await;
    let mut stack = Stack::new("elb-names", REGION);
    let (vpc, a, c, sg) = network(&mut stack);
    let resolved = create_all(&p, &stack).await;
    stack.add("web", TargetGroup::http(&vpc, 3000));
    stack.add("alb", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
    let id_of = |kind: Kind, id: &str| {
        resolved
            .get(&Address::new(kind, id))
            .unwrap()
            .physical_id
            .clone()
    };
    let name_of = |kind: Kind, id: &str| {
        infra_core::naming::physical_name(&stack.name, &declared(&stack, kind, id), 32)
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    let raw = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let create_tg = |name: String, tags: [(&str, &str); 2]| {
        raw.create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(3000)
            .vpc_id(id_of(Kind::Vpc, "main"))
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
    };
    let create_lb = |name: String, tags: Vec<(&str, &str)>| {
        raw.create_load_balancer()
            .name(name)
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .subnets(id_of(Kind::Subnet, "public_a"))
            .subnets(id_of(Kind::Subnet, "public_c"))
            .security_groups(id_of(Kind::SecurityGroup, "alb"))
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
    };

    // Named as this stack names its declared `web` and `alb`, but another stack's or nobody's.
    create_tg(
        name_of(Kind::TargetGroup, "web"),
        [(TAG_STACK, "someone-else"), (TAG_ID, "web")],
    )
    .await
    .expect("foreign target group");
    let foreign_lb = create_lb(name_of(Kind::LoadBalancer, "alb"), vec![])
        .await
        .expect("foreign load balancer");
    let foreign_lb = foreign_lb.load_balancers()[0].load_balancer_arn().unwrap();
    let fixed = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("404")
                .build(),
        )
        .build();
    // A listener tagged as ours on a load balancer that is not: never walked, never reported.
    raw.create_listener()
        .load_balancer_arn(foreign_lb)
        .port(80)
        .protocol(ProtocolEnum::Http)
        .default_actions(fixed.clone())
        .tags(tag(TAG_STACK, &stack.name))
        .tags(tag(TAG_ID, "stray"))
        .send()
        .await
        .expect("listener on the foreign load balancer");

    // Tagged as this stack's under names it does not give (adopted, or no longer declared):
    // found all the same, with their details read after their tags.
    let old_tg = create_tg(
        "adopted-tg".into(),
        [(TAG_STACK, stack.name.as_str()), (TAG_ID, "old")],
    )
    .await
    .expect("adopted target group");
    let old_tg = old_tg.target_groups()[0].target_group_arn().unwrap();
    raw.modify_target_group_attributes()
        .target_group_arn(old_tg)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("45")
                .build(),
        )
        .send()
        .await
        .expect("deregistration delay");
    let old_lb = create_lb(
        "adopted-lb".into(),
        vec![(TAG_STACK, stack.name.as_str()), (TAG_ID, "old")],
    )
    .await
    .expect("adopted load balancer");
    let old_lb = old_lb.load_balancers()[0].load_balancer_arn().unwrap();
    let old_listener = raw
        .create_listener()
        .load_balancer_arn(old_lb)
        .port(80)
        .protocol(ProtocolEnum::Http)
        .default_actions(fixed)
        .tags(tag(TAG_STACK, &stack.name))
        .tags(tag(TAG_ID, "old_http"))
        .send()
        .await
        .expect("adopted listener");
    let old_listener = old_listener.listeners()[0].listener_arn().unwrap();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(old_tg)
        .build();
    for (priority, tags) in [
        (5, vec![tag(TAG_STACK, &stack.name), tag(TAG_ID, "old_api")]),
        // A rule someone added by hand to our listener is not ours.
        (6, vec![]),
    ] {
        raw.create_rule()
            .listener_arn(old_listener)
            .priority(priority)
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .values(format!("/{priority}/*"))
                    .build(),
            )
            .actions(forward.clone())
            .set_tags(Some(tags))
            .send()
            .await
            .expect("rule");
    }

    let observed = p.discover(&stack).await.expect("discover");
    let mut found: Vec<String> = observed
        .iter()
        .filter(|o| is_elb(o.address.kind))
        .map(|o| o.address.to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "elbv2_listener.old_http",
            "elbv2_listener_rule.old_api",
            "elbv2_load_balancer.old",
            "elbv2_target_group.old",
        ]
    );
    let Resource::TargetGroup(tg) = &find(&observed, Kind::TargetGroup, "old").unwrap().resource
    else {
        panic!("target group expected");
    };
    assert_eq!(tg.deregistration_delay_seconds, 45);
}
