//! Client addresses behind reverse proxies.
//!
//! `X-Forwarded-For` is written by whoever sends the request, so it is read only when the
//! TCP peer is one of `--trusted-proxies`, and then from the right: each proxy appends the
//! address it received the request from, so the first hop (from the right) that is not a
//! trusted proxy is the client. Everything to its left is the client's own claim and is
//! ignored. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets report
//! IPv4 peers) are canonicalised to IPv4 first.

use std::net::IpAddr;

use ipnet::IpNet;

/// Parses `--trusted-proxies` entries: CIDRs (`10.0.0.0/8`) or single addresses.
///
/// # Errors
/// The first entry that is neither.
pub fn parse_proxies<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| e.as_ref().trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("--trusted-proxies entry {e:?} is not a CIDR or address"))
        })
        .collect()
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// The client address for a request from `peer` carrying these `X-Forwarded-For` values.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    proxies: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    if proxies.is_empty() || !trusted(proxies, peer) {
        return peer;
    }
    // all header lines joined in order, then read from the right
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            // unparsable: stop at the last address we could trust
            return client;
        };
        client = ip;
        if !trusted(proxies, ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn right_to_left_first_untrusted_hop() {
        let p = parse_proxies(&["10.0.0.0/8", "192.0.2.1"]).expect("parse");
        let xff = ["6.6.6.6, 198.51.100.1", "10.1.1.1"];
        assert_eq!(
            client_ip(ip("10.0.0.2"), xff.into_iter(), &p),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), xff.into_iter(), &p),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), ["198.51.100.7"].into_iter(), &p),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), [" junk "].into_iter(), &p),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), std::iter::empty(), &p),
            ip("10.0.0.2")
        );
        assert!(parse_proxies(&["10.0.0.0/40"]).is_err());
    }
}
