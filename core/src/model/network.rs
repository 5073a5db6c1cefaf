//! VPC, subnets, internet gateway, route tables and security groups.

use serde::{Deserialize, Serialize};

use crate::refs::{Kind, Ref, ResourceKind};

/// A VPC. DNS support and hostnames are on by default (ALB and RDS endpoints need them).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// s.output("vpc_id", vpc.vpc_id());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vpc {
    pub cidr: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

impl Vpc {
    /// A VPC with the IPv4 block `cidr`, /16 to /28 (`E0101`, `E0104`), DNS support and DNS
    /// hostnames on.
    pub fn new(cidr: impl Into<String>) -> Self {
        Vpc {
            cidr: cidr.into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
        }
    }

    /// DNS resolution through the Amazon-provided server (`enableDnsSupport`). Default: on.
    pub fn dns_support(mut self, on: bool) -> Self {
        self.enable_dns_support = on;
        self
    }

    /// DNS hostnames for instances with public IPs (`enableDnsHostnames`). Default: on.
    pub fn dns_hostnames(mut self, on: bool) -> Self {
        self.enable_dns_hostnames = on;
        self
    }
}

impl ResourceKind for Vpc {
    const KIND: Kind = Kind::Vpc;
}

/// A subnet in one availability zone of the stack's region.
///
/// Its `cidr` lies inside the VPC's block (`E0102`), overlaps no other subnet of the VPC
/// (`E0103`) and is /16 to /28 (`E0104`); its zone is the stack's region and one letter
/// (`E0105`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// s.add("private_a", Subnet::private(&vpc, "10.0.11.0/24", "ap-northeast-2a"));
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub vpc: Ref<Vpc>,
    pub cidr: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
}

impl Subnet {
    /// A public subnet: instances launched in it get a public IPv4 address
    /// (`MapPublicIpOnLaunch`). It reaches the internet once a [`RouteTable`] routes it to an
    /// [`InternetGateway`].
    pub fn public(vpc: &Ref<Vpc>, cidr: impl Into<String>, zone: impl Into<String>) -> Self {
        Subnet {
            vpc: vpc.clone(),
            cidr: cidr.into(),
            availability_zone: zone.into(),
            map_public_ip_on_launch: true,
        }
    }

    /// A private subnet: instances launched in it get no public IP.
    pub fn private(vpc: &Ref<Vpc>, cidr: impl Into<String>, zone: impl Into<String>) -> Self {
        Subnet {
            map_public_ip_on_launch: false,
            ..Subnet::public(vpc, cidr, zone)
        }
    }
}

impl ResourceKind for Subnet {
    const KIND: Kind = Kind::Subnet;
}

/// An internet gateway, attached to its VPC.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let igw = s.add("main", InternetGateway::new(&vpc));
/// s.add("public", RouteTable::new(&vpc).route("0.0.0.0/0", &igw));
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternetGateway {
    pub vpc: Ref<Vpc>,
}

impl InternetGateway {
    /// An internet gateway attached to `vpc`; route to it with [`RouteTable::route`].
    pub fn new(vpc: &Ref<Vpc>) -> Self {
        InternetGateway { vpc: vpc.clone() }
    }
}

impl ResourceKind for InternetGateway {
    const KIND: Kind = Kind::InternetGateway;
}

/// A route table with its routes and subnet associations (both owned by the table and compared
/// as whole sets).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let igw = s.add("main", InternetGateway::new(&vpc));
/// let a = s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// let c = s.add("public_c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// s.add(
///     "public",
///     RouteTable::new(&vpc)
///         .route("0.0.0.0/0", &igw)
///         .associate(&a)
///         .associate(&c),
/// );
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTable {
    pub vpc: Ref<Vpc>,
    pub routes: Vec<Route>,
    pub subnets: Vec<Ref<Subnet>>,
}

/// One route of a [`RouteTable`]: an IPv4 block to an internet gateway.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    pub internet_gateway: Ref<InternetGateway>,
}

impl RouteTable {
    /// A route table in `vpc` with no routes (besides the VPC's own local route, which AWS
    /// adds) and no subnets.
    pub fn new(vpc: &Ref<Vpc>) -> Self {
        RouteTable {
            vpc: vpc.clone(),
            routes: Vec::new(),
            subnets: Vec::new(),
        }
    }

    /// Route `destination` (an IPv4 CIDR, e.g. `0.0.0.0/0`; `E0101`) to an internet gateway of
    /// the table's VPC (`E0106`). Call once per route; default: none.
    pub fn route(mut self, destination: impl Into<String>, gateway: &Ref<InternetGateway>) -> Self {
        self.routes.push(Route {
            destination: destination.into(),
            internet_gateway: gateway.clone(),
        });
        self
    }

    /// Associate a subnet of the table's VPC (`E0106`) with this table. Call once per subnet;
    /// a subnet associated with no table uses the VPC's main route table.
    pub fn associate(mut self, subnet: &Ref<Subnet>) -> Self {
        self.subnets.push(subnet.clone());
        self
    }
}

impl ResourceKind for RouteTable {
    const KIND: Kind = Kind::RouteTable;
}

/// IP protocol of a security-group rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol and port (`-1`).
    All,
}

/// The other end of a security-group rule: a CIDR block or another security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(String),
    Ipv6Cidr(String),
    SecurityGroup(Ref<SecurityGroup>),
}

/// One security-group rule. For ingress the peer is the source, for egress the destination.
/// Ports are inclusive; for [`IpProtocol::All`] they are 0..=65535 and ignored by AWS.
///
/// Made in two steps: the protocol and ports ([`Rule::tcp`], [`Rule::tcp_range`],
/// [`Rule::udp`], [`Rule::udp_range`], [`Rule::all`]), then the peer
/// ([`RuleBuilder::from_anywhere`], [`RuleBuilder::from_cidr`], [`RuleBuilder::from_group`]...).
///
/// ```
/// use infra_core::prelude::*;
///
/// # let mut s = Stack::new("demo", "ap-northeast-2");
/// # let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let alb_sg = s.add("alb", SecurityGroup::new(&vpc, "load balancer"));
/// let rule = Rule::tcp(3000).from_group(&alb_sg).describe("app from the load balancer");
/// assert!(rule.admits_tcp(3000));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: IpProtocol,
    pub from_port: u16,
    pub to_port: u16,
    pub peer: Peer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Rule {
    /// TCP on one port; add the peer with [`RuleBuilder::from_anywhere`],
    /// [`RuleBuilder::from_cidr`] or [`RuleBuilder::from_group`].
    pub fn tcp(port: u16) -> RuleBuilder {
        Rule::tcp_range(port, port)
    }

    /// TCP on the ports `from_port..=to_port` (`from_port <= to_port`, `E0201`; `0, 65535` is
    /// all TCP).
    pub fn tcp_range(from_port: u16, to_port: u16) -> RuleBuilder {
        RuleBuilder {
            protocol: IpProtocol::Tcp,
            from_port,
            to_port,
        }
    }

    /// UDP on one port.
    pub fn udp(port: u16) -> RuleBuilder {
        Rule::udp_range(port, port)
    }

    /// UDP on the ports `from_port..=to_port` (`from_port <= to_port`, `E0201`).
    pub fn udp_range(from_port: u16, to_port: u16) -> RuleBuilder {
        RuleBuilder {
            protocol: IpProtocol::Udp,
            from_port,
            to_port,
        }
    }

    /// All traffic: every protocol and port (`-1`).
    pub fn all() -> RuleBuilder {
        RuleBuilder {
            protocol: IpProtocol::All,
            from_port: 0,
            to_port: 65535,
        }
    }

    /// The rule's description, instead of the generated `from PEER` (ingress) or `to PEER`
    /// (egress): at most 255 characters of `a-z A-Z 0-9`, space and `._-:/()#,@[]+=&;{}!$*`
    /// (`E0204`).
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Whether this rule admits TCP traffic on `port`.
    pub fn admits_tcp(&self, port: u16) -> bool {
        match self.protocol {
            IpProtocol::All => true,
            IpProtocol::Tcp => self.from_port <= port && port <= self.to_port,
            IpProtocol::Udp | IpProtocol::Icmp => false,
        }
    }
}

/// A rule waiting for its peer: what [`Rule::tcp`], [`Rule::udp`] and [`Rule::all`] return.
/// The `from_` and `to_` spellings make the same rule; the group's [`SecurityGroup::ingress`]
/// or [`SecurityGroup::egress`] decides the direction.
#[derive(Clone, Copy, Debug)]
pub struct RuleBuilder {
    protocol: IpProtocol,
    from_port: u16,
    to_port: u16,
}

impl RuleBuilder {
    fn peer(self, peer: Peer) -> Rule {
        Rule {
            protocol: self.protocol,
            from_port: self.from_port,
            to_port: self.to_port,
            peer,
            description: None,
        }
    }

    /// From (or to) any IPv4 address: `0.0.0.0/0`.
    pub fn from_anywhere(self) -> Rule {
        self.peer(Peer::Cidr("0.0.0.0/0".into()))
    }

    /// From (or to) an IPv4 block (`E0101`).
    pub fn from_cidr(self, cidr: impl Into<String>) -> Rule {
        self.peer(Peer::Cidr(cidr.into()))
    }

    /// From (or to) an IPv6 block (`E0101`).
    pub fn from_ipv6_cidr(self, cidr: impl Into<String>) -> Rule {
        self.peer(Peer::Ipv6Cidr(cidr.into()))
    }

    /// From (or to) the members of a security group of the same VPC (`E0203`); the group
    /// itself is allowed (members admitting each other).
    pub fn from_group(self, group: &Ref<SecurityGroup>) -> Rule {
        self.peer(Peer::SecurityGroup(group.clone()))
    }

    /// Egress spelling of [`RuleBuilder::from_anywhere`].
    pub fn to_anywhere(self) -> Rule {
        self.from_anywhere()
    }

    /// Egress spelling of [`RuleBuilder::from_cidr`].
    pub fn to_cidr(self, cidr: impl Into<String>) -> Rule {
        self.from_cidr(cidr)
    }

    /// Egress spelling of [`RuleBuilder::from_ipv6_cidr`].
    pub fn to_ipv6_cidr(self, cidr: impl Into<String>) -> Rule {
        self.from_ipv6_cidr(cidr)
    }

    /// Egress spelling of [`RuleBuilder::from_group`].
    pub fn to_group(self, group: &Ref<SecurityGroup>) -> Rule {
        self.from_group(group)
    }
}

impl Peer {
    /// The peer as a rule description names it: the CIDR, or the group's address.
    fn described(&self) -> String {
        match self {
            Peer::Cidr(cidr) | Peer::Ipv6Cidr(cidr) => cidr.clone(),
            Peer::SecurityGroup(group) => group.address().to_string(),
        }
    }
}

/// `rule` with a description: its own, or `from PEER` (`to PEER` for egress), so the console
/// says why each rule is there.
fn described(mut rule: Rule, direction: &str) -> Rule {
    if rule.description.is_none() {
        rule.description = Some(format!("{direction} {}", rule.peer.described()));
    }
    rule
}

/// A security group. Rules are owned by the group and compared as whole sets; each declared
/// rule carries a description (`from ec2_security_group.alb` unless given one).
/// Egress defaults to AWS's own default (all traffic to 0.0.0.0/0, no description), so a
/// fresh group plans clean.
///
/// Lints: an ingress rule open to the world on SSH, RDP or a database port (`INFRA-SG-001`
/// to `-003`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let alb_sg = s.add(
///     "alb",
///     SecurityGroup::new(&vpc, "HTTPS from anywhere").ingress(Rule::tcp(443).from_anywhere()),
/// );
/// s.add(
///     "app",
///     SecurityGroup::new(&vpc, "app from the load balancer")
///         .ingress(Rule::tcp(3000).from_group(&alb_sg))
///         .egress(Rule::tcp(443).to_anywhere()),
/// );
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub vpc: Ref<Vpc>,
    pub description: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

impl SecurityGroup {
    /// A group in `vpc`. `description` is 1-255 ASCII characters (`E0202`); AWS cannot change
    /// it in place. No ingress; egress all traffic to `0.0.0.0/0`.
    pub fn new(vpc: &Ref<Vpc>, description: impl Into<String>) -> Self {
        SecurityGroup {
            vpc: vpc.clone(),
            description: description.into(),
            ingress: Vec::new(),
            egress: vec![Rule::all().to_anywhere()],
        }
    }

    /// Add an ingress rule (call once per rule; default: none). Without
    /// [`Rule::describe`] it is described `from PEER`.
    pub fn ingress(mut self, rule: Rule) -> Self {
        self.ingress.push(described(rule, "from"));
        self
    }

    /// Replace the default allow-all egress with explicit rules (call once per rule). Without
    /// [`Rule::describe`] a rule is described `to PEER`.
    pub fn egress(mut self, rule: Rule) -> Self {
        if self.egress == [Rule::all().to_anywhere()] {
            self.egress.clear();
        }
        self.egress.push(described(rule, "to"));
        self
    }

    /// No egress at all.
    pub fn no_egress(mut self) -> Self {
        self.egress.clear();
        self
    }
}

impl ResourceKind for SecurityGroup {
    const KIND: Kind = Kind::SecurityGroup;
}
