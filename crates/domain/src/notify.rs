//! Outbound notifications: which timeline events become public webhook events and which become
//! emails, decided here once; what a webhook endpoint's address and description may be; and
//! which network addresses a delivery may reach.

use std::{net::IpAddr, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::RequestKind;

/// The public event types webhook endpoints subscribe to. Their names are part of the API:
/// never renamed, only added to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
pub enum EventType {
    /// A request was submitted and awaits an admin's decision; or its approved plan stopped
    /// applying before it was built, and it awaits a decision on a new plan (`reapproval`).
    #[serde(rename = "request.submitted")]
    #[strum(serialize = "request.submitted")]
    RequestSubmitted,
    /// A request was approved or rejected (`decision`, `note`).
    #[serde(rename = "request.decided")]
    #[strum(serialize = "request.decided")]
    RequestDecided,
    /// A provisioning run started.
    #[serde(rename = "run.started")]
    #[strum(serialize = "run.started")]
    RunStarted,
    /// A new unit's environment is ready.
    #[serde(rename = "environment.ready")]
    #[strum(serialize = "environment.ready")]
    EnvironmentReady,
    /// A run failed (or was cancelled, or a failed change was rolled back).
    #[serde(rename = "run.failed")]
    #[strum(serialize = "run.failed")]
    RunFailed,
    /// A change to an environment was applied.
    #[serde(rename = "environment.changed")]
    #[strum(serialize = "environment.changed")]
    EnvironmentChanged,
    /// An environment was removed and proven gone.
    #[serde(rename = "environment.decommissioned")]
    #[strum(serialize = "environment.decommissioned")]
    EnvironmentDecommissioned,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::RequestSubmitted,
        EventType::RequestDecided,
        EventType::RunStarted,
        EventType::EnvironmentReady,
        EventType::RunFailed,
        EventType::EnvironmentChanged,
        EventType::EnvironmentDecommissioned,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What people read next to its checkbox.
    pub fn label(self) -> &'static str {
        match self {
            EventType::RequestSubmitted => "Request submitted (an approval is needed)",
            EventType::RequestDecided => "Request approved or rejected",
            EventType::RunStarted => "Run started",
            EventType::EnvironmentReady => "New environment ready",
            EventType::RunFailed => "Run failed, cancelled or rolled back",
            EventType::EnvironmentChanged => "Change applied",
            EventType::EnvironmentDecommissioned => "Environment decommissioned",
        }
    }

    /// The public event a timeline event (`kind`, as `berth_db::events` and `berth_runs::events`
    /// write it) becomes, if any; `request_kind` is the kind of the event's request.
    pub fn from_timeline(kind: &str, request_kind: Option<RequestKind>) -> Option<EventType> {
        Some(match kind {
            "request.submitted" | "run.needs_reapproval" => EventType::RequestSubmitted,
            "request.approved" | "request.rejected" => EventType::RequestDecided,
            "run.started" => EventType::RunStarted,
            // `request.failed` rather than `run.failed`: it also follows a cancelled run and
            // a rolled-back change, which write no `run.failed`.
            "request.failed" => EventType::RunFailed,
            "request.ready" => match request_kind? {
                RequestKind::Create => EventType::EnvironmentReady,
                RequestKind::Change => EventType::EnvironmentChanged,
                RequestKind::Decommission => EventType::EnvironmentDecommissioned,
            },
            _ => return None,
        })
    }

    /// Whether [`EventType::from_timeline`] needs the request's kind to decide about `kind`.
    pub fn needs_request_kind(kind: &str) -> bool {
        kind == "request.ready"
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s.trim()).ok_or_else(|| format!("Unknown event type '{s}'."))
    }
}

/// The emails Berth sends, and to whom.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MailKind {
    /// To every admin who may decide it: a request awaits a decision (again, when its approved
    /// plan stopped applying).
    ApprovalNeeded,
    /// To the requester.
    Approved,
    /// To the requester, with the reason.
    Rejected,
    /// To the requester: the environment is ready (or the change applied, or it is gone).
    Ready,
    /// To the requester: the run failed.
    Failed,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The email a timeline event causes, if any.
    pub fn from_timeline(kind: &str) -> Option<MailKind> {
        Some(match kind {
            "request.submitted" | "run.needs_reapproval" => MailKind::ApprovalNeeded,
            "request.approved" => MailKind::Approved,
            "request.rejected" => MailKind::Rejected,
            "request.ready" => MailKind::Ready,
            "request.failed" => MailKind::Failed,
            _ => return None,
        })
    }

    /// Admins (who may decide the request: not its requester) rather than the requester.
    pub fn to_admins(self) -> bool {
        self == MailKind::ApprovalNeeded
    }
}

impl FromStr for MailKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown mail kind '{s}'"))
    }
}

/// A webhook endpoint's address: absolute `http` or `https`, with a host, without credentials
/// or a fragment. Where it resolves to is checked separately ([`refused_address`]), at
/// registration and again at every delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("Enter the endpoint's URL.".into());
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        let url = url::Url::parse(s).map_err(|e| format!("Not a valid URL: {e}."))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("Use an http:// or https:// URL.".into());
        }
        if url.host().is_none() {
            return Err("The URL needs a host.".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("Leave credentials out of the URL; deliveries are signed instead.".into());
        }
        if url.fragment().is_some() {
            return Err("Leave the #fragment out of the URL.".into());
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host as the URL names it (an IPv6 address without brackets) and the port.
    pub fn host_and_port(&self) -> (String, u16) {
        let url = url::Url::parse(&self.0).expect("checked by parse");
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        };
        (host, url.port_or_known_default().unwrap_or(443))
    }
}

/// What people call an endpoint ("Chat ops", "CMDB sync"); optional.
pub fn parse_webhook_description(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.chars().count() > 200 {
        return Err("Use at most 200 characters.".into());
    }
    Ok(s.to_owned())
}

/// The chosen event types: at least one, each known.
pub fn parse_event_types(chosen: &[String]) -> Result<Vec<EventType>, String> {
    let mut types = chosen
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<EventType>, _>>()?;
    types.sort();
    types.dedup();
    if types.is_empty() {
        return Err("Choose at least one event.".into());
    }
    Ok(types)
}

/// Why a delivery may not go to `ip`, or `None` when it may: anything but a public unicast
/// address is refused (loopback, private, link-local, shared, documentation, multicast, …)
/// unless `allow_private` (local development) — and the unspecified address always.
pub fn refused_address(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    // An IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if allow_private {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if a == 0 || a >= 240 || v4.is_broadcast() {
                Some("a reserved address")
            } else if v4.is_multicast() {
                Some("a multicast address")
            } else if (a, b, c) == (192, 0, 0) || (a == 198 && (b == 18 || b == 19)) {
                Some("a special-purpose address")
            } else if v4.is_documentation() {
                Some("a documentation address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else if first == 0x0064 && v6.segments()[1] == 0xff9b {
                Some("a NAT64 address")
            } else if first & 0xe000 != 0x2000 {
                // Only 2000::/3 is global unicast.
                Some("a reserved address")
            } else {
                None
            }
        }
    }
}

/// Why deliveries may not go to `host`, which resolves to `addresses`, or `None` when they may:
/// it needs an address, and every one must be allowed ([`refused_address`]) — one answer
/// among several is enough to be sent to it.
pub fn refused_target(host: &str, addresses: &[IpAddr], allow_private: bool) -> Option<String> {
    if addresses.is_empty() {
        return Some(format!("{host} has no address"));
    }
    addresses.iter().find_map(|ip| {
        refused_address(*ip, allow_private).map(|why| {
            if ip.to_string() == host {
                format!("{ip} is {why}")
            } else {
                format!("{host} resolves to {ip}, {why}")
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_events_map_to_public_events_once() {
        use EventType as T;
        let cases = [
            ("request.submitted", None, Some(T::RequestSubmitted)),
            ("run.needs_reapproval", None, Some(T::RequestSubmitted)),
            ("request.approved", None, Some(T::RequestDecided)),
            ("request.rejected", None, Some(T::RequestDecided)),
            ("request.withdrawn", None, None),
            ("run.started", None, Some(T::RunStarted)),
            ("request.failed", None, Some(T::RunFailed)),
            ("run.failed", None, None),
            (
                "request.ready",
                Some(RequestKind::Create),
                Some(T::EnvironmentReady),
            ),
            (
                "request.ready",
                Some(RequestKind::Change),
                Some(T::EnvironmentChanged),
            ),
            (
                "request.ready",
                Some(RequestKind::Decommission),
                Some(T::EnvironmentDecommissioned),
            ),
            ("request.ready", None, None),
            ("step.started", None, None),
        ];
        for (kind, request_kind, want) in cases {
            assert_eq!(EventType::from_timeline(kind, request_kind), want, "{kind}");
        }
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            EventType::RunFailed.as_str(),
            "run.failed",
            "names are the API's"
        );
    }

    #[test]
    fn emails_follow_the_request() {
        assert_eq!(
            MailKind::from_timeline("request.submitted"),
            Some(MailKind::ApprovalNeeded)
        );
        assert_eq!(
            MailKind::from_timeline("run.needs_reapproval"),
            Some(MailKind::ApprovalNeeded)
        );
        assert!(MailKind::ApprovalNeeded.to_admins());
        assert!(!MailKind::Rejected.to_admins());
        assert_eq!(MailKind::from_timeline("step.failed"), None);
        assert_eq!("ready".parse(), Ok(MailKind::Ready));
    }

    #[test]
    fn endpoint_urls() {
        let ok = WebhookUrl::parse(" https://hooks.example.com/berth?team=ops ").unwrap();
        assert_eq!(ok.as_str(), "https://hooks.example.com/berth?team=ops");
        assert_eq!(ok.host_and_port(), ("hooks.example.com".into(), 443));
        let v6 = WebhookUrl::parse("http://[2606:4700::1111]:8080/x").unwrap();
        assert_eq!(v6.host_and_port(), ("2606:4700::1111".into(), 8080));
        for bad in [
            "",
            "hooks.example.com/x",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "file:///etc/passwd",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["nope".into()]).is_err());
        assert_eq!(
            parse_event_types(&[
                "run.failed".into(),
                "run.started".into(),
                "run.failed".into()
            ]),
            Ok(vec![EventType::RunStarted, EventType::RunFailed])
        );
        assert!(parse_webhook_description(&"x".repeat(201)).is_err());
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ];
        for ip in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(refused_address(ip, false).is_some(), "{ip} must be refused");
        }
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_address(ip, false), None, "{ip}");
        }
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(refused_address(local, true), None);
        let public: IpAddr = "1.1.1.1".parse().unwrap();
        assert_eq!(refused_target("hooks.example.com", &[public], false), None);
        assert_eq!(
            refused_target("hooks.example.com", &[public, local], false).as_deref(),
            Some("hooks.example.com resolves to 127.0.0.1, a loopback address")
        );
        assert_eq!(
            refused_target("127.0.0.1", &[local], false).as_deref(),
            Some("127.0.0.1 is a loopback address")
        );
        assert!(refused_target("nowhere.example", &[], true).is_some());
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(
            refused_address(any, true).is_some(),
            "never the unspecified address"
        );
    }
}
