//! Which action-server addresses may be called (docs/actions.md, "Destinations").
//!
//! A URL must be `https://` (or `http://` where the deployment allows it). Its host — written as an
//! address or resolved through DNS — must not be private, loopback, link-local, multicast, reserved
//! or a cloud metadata address unless an allowlisted CIDR contains it. The check runs at registration
//! and again on every call, inside the HTTP client's resolver, so the client connects only to
//! addresses that passed it (a DNS answer that changes between check and connect cannot get around it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Why a destination is refused. The message is safe to show to the caller.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    /// Not a URL.
    #[error("not a valid URL: {0}")]
    Invalid(String),
    /// A scheme other than https (or http where allowed).
    #[error("scheme {0}:// is not allowed (use https://)")]
    Scheme(String),
    /// user:password@ in the URL.
    #[error("credentials in the URL are not allowed")]
    Credentials,
    /// The URL names or resolves to an address in a forbidden range.
    #[error("{host} resolves to {addr}, a private, loopback, link-local or reserved address")]
    Forbidden {
        /// The host as written.
        host: String,
        /// The first forbidden address found.
        addr: IpAddr,
    },
    /// DNS has no address for the host.
    #[error("{0} does not resolve")]
    Unresolvable(String),
}

/// The deployment's destination rules.
#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    allow_http: bool,
    allow: Arc<Vec<IpNet>>,
}

impl DestinationPolicy {
    /// `allow_http`: accept `http://` URLs (local development). `allow`: CIDRs that are callable even
    /// though they are in a forbidden range (e.g. `127.0.0.1/32` for a local demo action server).
    pub fn new(allow_http: bool, allow: Vec<IpNet>) -> Self {
        Self {
            allow_http,
            allow: Arc::new(allow),
        }
    }

    /// Parses a comma-separated CIDR list (`10.1.0.0/16, 127.0.0.1/32`; a bare address is one host).
    pub fn parse_allowlist(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))
            })
            .collect()
    }

    /// Checks the URL's form and, when its host is an address literal, the address. A host name is
    /// checked after resolution ([`DestinationPolicy::check_addr`], done by the client's resolver).
    pub fn check_url(&self, text: &str) -> Result<Url, DestinationError> {
        let url = Url::parse(text).map_err(|e| DestinationError::Invalid(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(DestinationError::Scheme(other.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestinationError::Credentials);
        }
        let literal = match url.host() {
            None => return Err(DestinationError::Invalid("the URL has no host".into())),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        };
        if let Some(addr) = literal {
            self.check_addr(url.host_str().unwrap_or_default(), addr)?;
        }
        Ok(url)
    }

    /// Whether `addr` (one address `host` resolved to) may be called.
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), DestinationError> {
        let addr = canonical(addr);
        if is_public(addr) || self.allow.iter().any(|net| net.contains(&addr)) {
            Ok(())
        } else {
            Err(DestinationError::Forbidden {
                host: host.to_string(),
                addr,
            })
        }
    }

    /// Resolves `host` and keeps only callable addresses; refused when none is callable. Every
    /// resolved address must pass: a name with one private answer among public ones is refused, so an
    /// attacker cannot race the client into the private one.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, DestinationError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| DestinationError::Unresolvable(host.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(DestinationError::Unresolvable(host.to_string()));
        }
        for addr in &addrs {
            self.check_addr(host, addr.ip())?;
        }
        Ok(addrs)
    }
}

/// IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address inside them.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Globally routable unicast: not private, loopback, link-local (incl. metadata 169.254.169.254),
/// shared (CGNAT), documentation, benchmarking, multicast, broadcast, reserved or unspecified.
pub fn is_public(addr: IpAddr) -> bool {
    match canonical(addr) {
        IpAddr::V4(a) => {
            let [o0, o1, o2, _] = a.octets();
            !(a.is_unspecified()
                || a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o0 == 0
                || (o0 == 100 && (64..128).contains(&o1))
                || (o0 == 192 && o1 == 0 && o2 == 0)
                || (o0 == 198 && (o1 == 18 || o1 == 19))
                || o0 >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (incl. fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
                || a == Ipv6Addr::from([0u8; 16]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> DestinationPolicy {
        DestinationPolicy::new(false, vec![])
    }

    #[test]
    fn forbidden_ranges_are_refused() {
        for a in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.100",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            let addr: IpAddr = a.parse().expect("test address");
            assert!(!is_public(addr), "{a} must be refused");
            assert!(strict().check_addr("h", addr).is_err(), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(a.parse().expect("test address")), "{a} is public");
        }
    }

    #[test]
    fn urls_need_https_unless_http_is_allowed() {
        assert_eq!(
            strict().check_url("http://example.com/x"),
            Err(DestinationError::Scheme("http".into()))
        );
        assert!(strict().check_url("https://example.com/x").is_ok());
        assert!(DestinationPolicy::new(true, vec![])
            .check_url("http://example.com/x")
            .is_ok());
        assert_eq!(
            strict().check_url("ftp://example.com/x"),
            Err(DestinationError::Scheme("ftp".into()))
        );
        assert_eq!(
            strict().check_url("https://u:p@example.com/"),
            Err(DestinationError::Credentials)
        );
        assert!(matches!(
            strict().check_url("not a url"),
            Err(DestinationError::Invalid(_))
        ));
    }

    #[test]
    fn address_literals_are_checked_in_every_spelling() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://2130706433/", // 127.0.0.1 as one decimal number
            "https://0x7f.0.0.1/", // hex octet
            "https://[::ffff:169.254.169.254]/",
        ] {
            assert!(
                matches!(
                    strict().check_url(url),
                    Err(DestinationError::Forbidden { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn the_allowlist_opts_back_in() {
        let nets =
            DestinationPolicy::parse_allowlist("127.0.0.1/32, 10.1.0.0/16 ,::1").expect("parse");
        let policy = DestinationPolicy::new(true, nets);
        assert!(policy.check_url("http://127.0.0.1:9000/a").is_ok());
        assert!(policy
            .check_addr("h", "10.1.200.3".parse().expect("ip"))
            .is_ok());
        assert!(policy.check_addr("h", "::1".parse().expect("ip")).is_ok());
        assert!(policy
            .check_addr("h", "10.2.0.1".parse().expect("ip"))
            .is_err());
        assert!(policy
            .check_addr("h", "127.0.0.2".parse().expect("ip"))
            .is_err());
        assert!(DestinationPolicy::parse_allowlist("10.0.0.0/33").is_err());
        assert!(DestinationPolicy::parse_allowlist("")
            .expect("empty")
            .is_empty());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_without_the_allowlist() {
        let err = strict()
            .resolve("localhost", 443)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, DestinationError::Forbidden { ref host, .. } if host == "localhost"),
            "{err}"
        );
        let allowed = DestinationPolicy::new(
            false,
            DestinationPolicy::parse_allowlist("127.0.0.0/8,::1").expect("p"),
        );
        let addrs = allowed.resolve("localhost", 443).await.expect("allowed");
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
