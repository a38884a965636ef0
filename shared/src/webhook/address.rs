//! Where a webhook may go: the URL rules and the address policy that refuses
//! loopback, private, link-local and other internal addresses after DNS
//! resolution, so a job cannot make the notifier call into our network.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use async_trait::async_trait;
use url::Url;

/// What a webhook may point at besides the public internet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Plain http and loopback receivers: for the local stack only, never set in AWS.
    pub allow_local: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("webhook_url is not a URL: {0}")]
    Syntax(String),
    #[error("webhook_url must use https")]
    Scheme,
    #[error("webhook_url must name a host and carry no credentials")]
    Host,
    #[error(
        "webhook_url points at {address}, {reason}; webhooks are only sent to public addresses"
    )]
    Blocked {
        address: IpAddr,
        reason: &'static str,
    },
    #[error("the webhook host {host} did not resolve: {detail}")]
    Unresolved { host: String, detail: String },
    #[error("webhook_url is longer than {MAX_WEBHOOK_URL_CHARS} characters")]
    TooLong,
}

/// The longest webhook URL a job may carry, in characters as the client wrote
/// it (the spec's `maxLength`): it is stored on the job's record.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2048;

impl WebhookUrlError {
    pub const fn code(&self) -> &'static str {
        match self {
            WebhookUrlError::Blocked { .. } => "webhook_address_blocked",
            WebhookUrlError::Unresolved { .. } => "webhook_unresolved",
            _ => "invalid_webhook_url",
        }
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn v4_reason(ip: Ipv4Addr, policy: AddressPolicy) -> Option<&'static str> {
    let ranges: [([u8; 4], u32, &'static str); 13] = [
        ([169, 254, 169, 254], 32, "the instance metadata address"),
        ([0, 0, 0, 0], 8, "a 'this network' address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([100, 64, 0, 0], 10, "a carrier-grade NAT address"),
        ([192, 0, 0, 0], 24, "a protocol-assignment address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
    ];
    ranges
        .iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, reason)| *reason)
        .filter(|reason| !(policy.allow_local && *reason == "a loopback address"))
}

fn v6_reason(ip: Ipv6Addr, policy: AddressPolicy) -> Option<&'static str> {
    // IPv4 written as IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96) is judged as IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4, policy);
    }
    let segments = ip.segments();
    let [a, b] = segments[6].to_be_bytes();
    let [c, d] = segments[7].to_be_bytes();
    let embedded = Ipv4Addr::new(a, b, c, d);
    if segments[..6] == [0; 6] && segments[6] != 0 {
        return v4_reason(embedded, policy);
    }
    // NAT64 reaches whatever IPv4 it embeds, internal or not: never a webhook.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded, policy).or(Some("a NAT64 address"));
    }
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Some("a NAT64 address");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("the instance metadata address");
    }
    if ip.is_loopback() {
        return (!policy.allow_local).then_some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => Some("a unique local address"),
        s if s & 0xffc0 == 0xfe80 => Some("a link-local address"),
        s if s & 0xff00 == 0xff00 => Some("a multicast address"),
        0x2001 if segments[1] == 0x0db8 => Some("a documentation address"),
        // Tunnels that carry IPv4 inside: where they land is not what they say.
        0x2001 if segments[1] == 0 => Some("a Teredo tunnel address"),
        0x2002 => Some("a 6to4 tunnel address"),
        _ => None,
    }
}

/// Why a webhook may not be sent to `address`, or `None` when it may.
pub fn blocked_reason(address: IpAddr, policy: AddressPolicy) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) => v4_reason(ip, policy),
        IpAddr::V6(ip) => v6_reason(ip, policy),
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// The URL, if it may be a webhook: https (http only under `allow_local`), a host,
/// no credentials, and no literal address in a blocked range. Numeric forms such
/// as `2130706433` or `0x7f000001` are read as the address they spell.
pub fn check_url(raw: &str, policy: AddressPolicy) -> Result<Url, WebhookUrlError> {
    if raw.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(WebhookUrlError::TooLong);
    }
    let url = Url::parse(raw).map_err(|e| WebhookUrlError::Syntax(e.to_string()))?;
    // The stored normal form of a URL as the spec allows it (ASCII) differs
    // little (a `/` after the host); percent-encoding what the spec does not
    // allow (spaces, non-ASCII) may triple it, and is bounded here.
    if url.as_str().len() > 2 * MAX_WEBHOOK_URL_CHARS {
        return Err(WebhookUrlError::TooLong);
    }
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_local => {}
        _ => return Err(WebhookUrlError::Scheme),
    }
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(WebhookUrlError::Host);
    }
    if let Some(address) = literal_ip(&url)
        && let Some(reason) = blocked_reason(address, policy)
    {
        return Err(WebhookUrlError::Blocked { address, reason });
    }
    Ok(url)
}

/// Looks names up: the system's resolver in a function, a fixed table in tests.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, port))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// Where a delivery may connect: the checked addresses of the URL's host,
/// resolved now, so the connection goes to what was checked and nothing else.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub url: Url,
    pub host: String,
    pub addresses: Vec<SocketAddr>,
}

impl Destination {
    /// Resolves the URL's host and checks every address it resolves to; one
    /// blocked address refuses the whole destination.
    pub async fn resolve(
        raw: &str,
        policy: AddressPolicy,
        resolver: &dyn Resolver,
    ) -> Result<Self, WebhookUrlError> {
        let url = check_url(raw, policy)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let ips = match literal_ip(&url) {
            Some(ip) => vec![ip],
            None => {
                resolver
                    .lookup(&host, port)
                    .await
                    .map_err(|e| WebhookUrlError::Unresolved {
                        host: host.clone(),
                        detail: e.to_string(),
                    })?
            }
        };
        if ips.is_empty() {
            return Err(WebhookUrlError::Unresolved {
                host,
                detail: "no addresses".into(),
            });
        }
        for ip in &ips {
            if let Some(reason) = blocked_reason(*ip, policy) {
                return Err(WebhookUrlError::Blocked {
                    address: *ip,
                    reason,
                });
            }
        }
        let addresses = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        Ok(Self {
            url,
            host,
            addresses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy { allow_local: false };

    #[test]
    fn a_webhook_url_over_two_kib_is_refused() {
        let base = "https://hooks.example.com/";
        let fits = format!("{base}{}", "a".repeat(MAX_WEBHOOK_URL_CHARS - base.len()));
        assert!(check_url(&fits, STRICT).is_ok());
        let over = format!("{fits}a");
        let error = check_url(&over, STRICT).unwrap_err();
        assert!(matches!(error, WebhookUrlError::TooLong), "{error}");
        assert_eq!(error.code(), "invalid_webhook_url");
        // Within the limit as written, but far longer once percent-encoded.
        let spaced = format!("{base}{}", "x  ".repeat(600));
        assert!(matches!(
            check_url(&spaced, STRICT),
            Err(WebhookUrlError::TooLong)
        ));
    }

    #[test]
    fn every_internal_form_is_refused_with_a_reason() {
        let cases = [
            ("https://127.0.0.1/hook", "a loopback address"),
            ("https://0.0.0.0/hook", "a 'this network' address"),
            ("https://10.0.0.1/hook", "a private address"),
            ("https://172.16.0.1/hook", "a private address"),
            ("https://192.168.1.1/hook", "a private address"),
            (
                "https://169.254.169.254/latest/meta-data",
                "the instance metadata address",
            ),
            ("https://169.254.1.1/", "a link-local address"),
            ("https://100.64.0.1/hook", "a carrier-grade NAT address"),
            ("https://[::1]/hook", "a loopback address"),
            (
                "https://[fd00:ec2::254]/hook",
                "the instance metadata address",
            ),
            ("https://[fd12:3456::1]/hook", "a unique local address"),
            ("https://[fe80::1]/hook", "a link-local address"),
            ("https://[::ffff:127.0.0.1]/hook", "a loopback address"),
            ("https://[::ffff:10.1.2.3]/hook", "a private address"),
            (
                "https://[64:ff9b::a9fe:a9fe]/hook",
                "the instance metadata address",
            ),
            ("https://2130706433/hook", "a loopback address"),
            ("https://0x7f000001/hook", "a loopback address"),
            ("https://0177.0.0.1/hook", "a loopback address"),
            ("https://224.0.0.1/hook", "a multicast address"),
            ("https://[64:ff9b::808:808]/hook", "a NAT64 address"),
            ("https://[64:ff9b:1::a00:1]/hook", "a NAT64 address"),
            (
                "https://[2001:0:4136:e378::1]/hook",
                "a Teredo tunnel address",
            ),
            ("https://[2002:a00:1::1]/hook", "a 6to4 tunnel address"),
        ];
        for (url, reason) in cases {
            match check_url(url, STRICT) {
                Err(WebhookUrlError::Blocked { reason: got, .. }) => {
                    assert_eq!(got, reason, "{url}")
                }
                other => panic!("{url} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn public_https_urls_pass_and_other_schemes_do_not() {
        assert!(check_url("https://hooks.example.com/ocr?x=1", STRICT).is_ok());
        assert!(check_url("https://93.184.216.34/hook", STRICT).is_ok());
        assert!(check_url("https://[2606:4700::1111]/hook", STRICT).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/", STRICT),
            Err(WebhookUrlError::Scheme)
        );
        assert_eq!(
            check_url("ftp://hooks.example.com/", STRICT),
            Err(WebhookUrlError::Scheme)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", STRICT),
            Err(WebhookUrlError::Host)
        );
        assert!(matches!(
            check_url("not a url", STRICT),
            Err(WebhookUrlError::Syntax(_))
        ));
    }

    #[test]
    fn the_local_setting_admits_http_and_loopback_only() {
        let local = AddressPolicy { allow_local: true };
        assert!(check_url("http://127.0.0.1:8080/hook", local).is_ok());
        assert!(check_url("http://[::1]:8080/hook", local).is_ok());
        assert!(check_url("http://10.0.0.1/hook", local).is_err());
        assert!(check_url("http://169.254.169.254/", local).is_err());
    }

    struct Table(Vec<IpAddr>);

    #[async_trait]
    impl Resolver for Table {
        async fn lookup(&self, _: &str, _: u16) -> io::Result<Vec<IpAddr>> {
            Ok(self.0.clone())
        }
    }

    #[tokio::test]
    async fn a_name_is_judged_by_every_address_it_resolves_to() {
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        let ok = Destination::resolve("https://hooks.example.com/x", STRICT, &Table(vec![public]))
            .await
            .unwrap();
        assert_eq!(ok.host, "hooks.example.com");
        assert_eq!(ok.addresses, vec![SocketAddr::new(public, 443)]);
        let refused = Destination::resolve(
            "https://hooks.example.com/x",
            STRICT,
            &Table(vec![public, private]),
        )
        .await;
        assert!(
            matches!(refused, Err(WebhookUrlError::Blocked { address, .. }) if address == private)
        );
        let nothing =
            Destination::resolve("https://hooks.example.com/x", STRICT, &Table(vec![])).await;
        assert!(matches!(nothing, Err(WebhookUrlError::Unresolved { .. })));
    }
}
