//! Which address a request comes from, for the login and enrolment limits.
//!
//! Directly connected, it is the socket's peer. Behind a reverse proxy every
//! request's peer is the proxy, so the limits (per username and address)
//! would make one person's wrong passwords lock the account for everyone.
//! When the peer is a proxy the operator trusts (`--trusted-proxy`), the
//! client is read from `X-Forwarded-For` or `Forwarded`: the rightmost
//! address that is not itself a trusted proxy, since a client can write any
//! addresses it likes on the left of those headers.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: `peer`, unless `peer` is a trusted proxy and
    /// the forwarding headers name someone before it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        // Hops in order, client first, as `Forwarded` (RFC 7239) or else
        // `X-Forwarded-For` list them; the peer is the last hop.
        let hops = forwarded_for(headers).unwrap_or_else(|| x_forwarded_for(headers));
        hops.into_iter()
            .rev()
            .map(canonical)
            .find(|ip| !self.contains(*ip))
            .unwrap_or(peer)
    }
}

/// Parses one `--trusted-proxy` value: an address (`10.0.0.5`) or a network
/// (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| {
            format!(
                "trusted proxy {s:?} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            )
        })
}

/// An IPv4 address arriving as IPv4-mapped IPv6 (a dual-stack socket) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| IpAddr::from_str(s.trim()).ok())
        .collect()
}

/// The `for=` of every element of `Forwarded`, or `None` when there is no
/// such header. Unknown or obfuscated identifiers (`for=unknown`, `for=_x`)
/// are skipped: they name no address to limit.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let values: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for element in values.iter().flat_map(|v| v.split(',')) {
        for pair in element.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("for") {
                continue;
            }
            let v = v.trim().trim_matches('"');
            // `[2001:db8::1]:4711`, `192.0.2.60:4711` or a bare address.
            let host = match v.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or(""),
                None => match v.rsplit_once(':') {
                    Some((h, port)) if !h.contains(':') && port.parse::<u16>().is_ok() => h,
                    _ => v,
                },
            };
            if let Ok(ip) = IpAddr::from_str(host) {
                out.push(ip);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| parse_proxy(s).unwrap()).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[rstest]
    #[case::no_proxy_configured_headers_are_ignored(&[], "10.0.0.5", &[("x-forwarded-for", "203.0.113.7")], "10.0.0.5")]
    #[case::an_untrusted_peer_cannot_claim_another_address(&["10.0.0.5"], "198.51.100.9", &[("x-forwarded-for", "203.0.113.7")], "198.51.100.9")]
    #[case::a_trusted_proxy_names_the_client(&["10.0.0.5"], "10.0.0.5", &[("x-forwarded-for", "203.0.113.7")], "203.0.113.7")]
    #[case::a_network_of_proxies(&["10.0.0.0/8"], "10.1.2.3", &[("x-forwarded-for", "203.0.113.7, 10.9.9.9")], "203.0.113.7")]
    #[case::a_forged_left_entry_is_not_believed(&["10.0.0.5"], "10.0.0.5", &[("x-forwarded-for", "1.2.3.4, 203.0.113.7")], "203.0.113.7")]
    #[case::forwarded_is_read_first(&["10.0.0.5"], "10.0.0.5", &[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https"), ("x-forwarded-for", "1.2.3.4")], "2001:db8::7")]
    #[case::forwarded_with_a_port(&["10.0.0.5"], "10.0.0.5", &[("forwarded", "for=192.0.2.60:4711;by=10.0.0.5")], "192.0.2.60")]
    #[case::a_trusted_proxy_without_headers_is_the_client(&["10.0.0.5"], "10.0.0.5", &[], "10.0.0.5")]
    #[case::ipv4_mapped_peer_matches_an_ipv4_proxy(&["10.0.0.5"], "::ffff:10.0.0.5", &[("x-forwarded-for", "203.0.113.7")], "203.0.113.7")]
    fn the_client_address_comes_from_headers_only_through_a_trusted_proxy(
        #[case] trusted: &[&str],
        #[case] peer: &str,
        #[case] hdrs: &[(&str, &str)],
        #[case] client: &str,
    ) {
        let got = proxies(trusted).client(peer.parse().unwrap(), &headers(hdrs));
        assert_eq!(got, client.parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_proxy_setting_that_is_not_an_address_says_what_to_write() {
        let e = parse_proxy("proxy.local").unwrap_err();
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert_eq!(parse_proxy("10.0.0.5").unwrap().to_string(), "10.0.0.5/32");
    }
}
