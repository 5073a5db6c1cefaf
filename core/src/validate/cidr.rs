//! IPv4 and IPv6 CIDR blocks: parsing, containment and overlap.

use std::fmt;
use std::str::FromStr;

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// A CIDR block in network form (no host bits set), e.g. `10.0.1.0/24` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    family: Family,
    /// The network address; IPv4 addresses use the low 32 bits.
    network: u128,
    prefix: u8,
}

/// Why a string is not a CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` has no prefix length (expected ADDRESS/PREFIX, e.g. 10.0.0.0/16)")]
    MissingPrefix(String),
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("prefix length `{prefix}` is not a number from 0 to {max}")]
    BadPrefix { prefix: String, max: u8 },
    #[error("`{given}` has host bits set; the network is {network}")]
    HostBitsSet { given: String, network: Cidr },
}

impl Cidr {
    pub fn family(&self) -> Family {
        self.family
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first address of the block (IPv4 in the low 32 bits).
    pub fn network(&self) -> u128 {
        self.network
    }

    /// The last address of the block.
    pub fn last(&self) -> u128 {
        self.network | (!mask(self.family, self.prefix) & all_ones(self.family))
    }

    /// Whether every address of `other` is inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.family == other.family
            && self.prefix <= other.prefix
            && other.network & mask(self.family, self.prefix) == self.network
    }

    /// Whether the two blocks share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// `0.0.0.0/0` or `::/0`.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

fn all_ones(family: Family) -> u128 {
    match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    }
}

/// The network mask for `prefix` bits of `family`.
fn mask(family: Family, prefix: u8) -> u128 {
    let all = all_ones(family);
    let host = all.checked_shr(u32::from(prefix)).unwrap_or(0);
    all ^ host
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix(s.to_string()))?;
        let (family, value) = if address.contains(':') {
            (Family::V6, parse_ipv6(address))
        } else {
            (Family::V4, parse_ipv4(address).map(u128::from))
        };
        let value = value.ok_or_else(|| CidrError::BadAddress(address.to_string()))?;
        let max = family.bits();
        let bad_prefix = || CidrError::BadPrefix {
            prefix: prefix.to_string(),
            max,
        };
        if prefix.is_empty()
            || prefix.len() > 3
            || !prefix.bytes().all(|b| b.is_ascii_digit())
            || (prefix.len() > 1 && prefix.starts_with('0'))
        {
            return Err(bad_prefix());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad_prefix())?;
        if prefix > max {
            return Err(bad_prefix());
        }
        let network = value & mask(family, prefix);
        let cidr = Cidr {
            family,
            network,
            prefix,
        };
        if network != value {
            return Err(CidrError::HostBitsSet {
                given: s.to_string(),
                network: cidr,
            });
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.family {
            Family::V4 => {
                let v = self.network as u32;
                write!(
                    f,
                    "{}.{}.{}.{}/{}",
                    v >> 24,
                    (v >> 16) & 0xff,
                    (v >> 8) & 0xff,
                    v & 0xff,
                    self.prefix
                )
            }
            Family::V6 => write!(
                f,
                "{}/{}",
                std::net::Ipv6Addr::from(self.network),
                self.prefix
            ),
        }
    }
}

/// Dotted quad, four decimal octets without leading zeros.
fn parse_ipv4(s: &str) -> Option<u32> {
    let mut value: u32 = 0;
    let mut count = 0;
    for part in s.split('.') {
        count += 1;
        if count > 4
            || part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        let octet: u32 = part.parse().ok()?;
        if octet > 255 {
            return None;
        }
        value = (value << 8) | octet;
    }
    (count == 4).then_some(value)
}

/// Eight groups of up to four hex digits, with at most one `::` and an optional trailing
/// dotted IPv4 part.
fn parse_ipv6(s: &str) -> Option<u128> {
    fn groups(part: &str) -> Option<Vec<u16>> {
        if part.is_empty() {
            return Some(Vec::new());
        }
        let pieces: Vec<&str> = part.split(':').collect();
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            if i + 1 == pieces.len() && piece.contains('.') {
                let v4 = parse_ipv4(piece)?;
                out.push((v4 >> 16) as u16);
                out.push((v4 & 0xffff) as u16);
            } else {
                if piece.is_empty() || piece.len() > 4 {
                    return None;
                }
                out.push(u16::from_str_radix(piece, 16).ok()?);
            }
        }
        Some(out)
    }

    let all: Vec<u16> = match s.split_once("::") {
        Some((head, tail)) => {
            if tail.contains("::") {
                return None;
            }
            let head = groups(head)?;
            let tail = groups(tail)?;
            if head.len() + tail.len() > 7 {
                return None;
            }
            let mut all = head;
            all.resize(8 - tail.len(), 0);
            all.extend(tail);
            all
        }
        None => {
            let all = groups(s)?;
            if all.len() != 8 {
                return None;
            }
            all
        }
    };
    if s.contains('.') && !s.rsplit(':').next().is_some_and(|last| last.contains('.')) {
        return None;
    }
    Some(
        all.iter()
            .fold(0u128, |acc, g| (acc << 16) | u128::from(*g)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ipv4_and_ipv6() {
        assert_eq!(c("10.0.0.0/16").to_string(), "10.0.0.0/16");
        assert_eq!(c("0.0.0.0/0").prefix(), 0);
        assert_eq!(c("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(c("::/0").family(), Family::V6);
        assert_eq!(c("::ffff:10.0.0.0/120").to_string(), "::ffff:10.0.0.0/120");
    }

    #[test]
    fn rejects_malformed_blocks() {
        for bad in [
            "10.0.0.0",
            "10.0.0/16",
            "10.0.0.256/24",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/a",
            "010.0.0.0/8",
            "10.0.0.0/016",
            "1:2:3:4:5:6:7:8:9/64",
            "1::2::3/64",
            "::g/64",
            "12345::/16",
            "/16",
            "",
            "10.0.0.0/16/1",
            "::/129",
            "1.2.3.4::/64",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn host_bits_name_the_network() {
        let err = "10.0.1.7/16".parse::<Cidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.0.1.7/16` has host bits set; the network is 10.0.0.0/16"
        );
    }

    #[test]
    fn containment_and_overlap() {
        assert!(c("10.0.0.0/16").contains(&c("10.0.1.0/24")));
        assert!(!c("10.0.0.0/16").contains(&c("10.1.0.0/24")));
        assert!(c("0.0.0.0/0").contains(&c("10.1.0.0/24")));
        assert!(c("10.0.0.0/24").overlaps(&c("10.0.0.0/25")));
        assert!(!c("10.0.0.0/25").overlaps(&c("10.0.0.128/25")));
        assert!(!c("::/0").contains(&c("10.0.0.0/8")));
        assert_eq!(c("10.0.0.0/24").last(), u128::from(0x0a00_00ffu32));
    }

    fn v4_block() -> impl Strategy<Value = (u32, u8)> {
        (any::<u32>(), 0u8..=32).prop_map(|(addr, prefix)| {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            (addr & mask, prefix)
        })
    }

    /// The block as an inclusive range of u32 addresses, computed the long way.
    fn range((network, prefix): (u32, u8)) -> (u64, u64) {
        let size = 1u64 << (32 - u32::from(prefix));
        (u64::from(network), u64::from(network) + size - 1)
    }

    fn text((network, prefix): (u32, u8)) -> String {
        format!("{}/{prefix}", std::net::Ipv4Addr::from(network))
    }

    proptest! {
        #[test]
        fn contains_matches_ranges(a in v4_block(), b in v4_block()) {
            let (ca, cb) = (c(&text(a)), c(&text(b)));
            let ((a0, a1), (b0, b1)) = (range(a), range(b));
            prop_assert_eq!(ca.contains(&cb), a0 <= b0 && b1 <= a1);
            prop_assert_eq!(ca.overlaps(&cb), a0 <= b1 && b0 <= a1);
            prop_assert_eq!(ca.last() as u64, a1);
        }

        #[test]
        fn ipv4_round_trips(a in v4_block()) {
            prop_assert_eq!(c(&text(a)).to_string(), text(a));
        }

        #[test]
        fn ipv6_agrees_with_std(addr in any::<u128>(), prefix in 0u8..=128) {
            let network = addr & mask(Family::V6, prefix);
            let s = format!("{}/{prefix}", std::net::Ipv6Addr::from(network));
            let parsed = c(&s);
            prop_assert_eq!(parsed.network(), network);
            prop_assert_eq!(parsed.to_string(), s);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Cidr>();
        }
    }
}
