#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ws://` and `wss://` URLs (RFC 6455 section 3): properties of the splitter.

use proptest::prelude::*;
use tether_handshake::WsUrl;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any string: no panic; a URL that parses writes a request line and a
    /// Host header that cannot be broken, and prints as a URL that parses back
    /// to itself.
    #[test]
    fn rfc6455_3_any_string_parses_or_is_refused_and_round_trips(s in "(ws|wss|WS|http)?(://)?[ -~\u{e4}\r\n\t]{0,40}") {
        if let Ok(url) = WsUrl::parse(&s) {
            prop_assert!(url.resource_name().starts_with('/'));
            prop_assert!(url.resource_name().bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(url.host_header().bytes().all(|b| b.is_ascii_graphic() && b != b'/'));
            prop_assert!(!url.resource_name().contains('#'));
            prop_assert_eq!(WsUrl::parse(&url.to_string()), Ok(url));
        }
    }

    /// URLs built from parts split back into those parts.
    #[test]
    fn rfc6455_3_parts_round_trip(
        secure: bool,
        host in "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z]{1,5}){0,2}",
        port in proptest::option::of(1u16..),
        path in "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){0,3}",
        query in proptest::option::of("[a-zA-Z0-9=&/?._-]{0,12}"),
    ) {
        let scheme = if secure { "wss" } else { "ws" };
        let mut s = format!("{scheme}://{host}");
        if let Some(p) = port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(&path);
        if let Some(q) = &query {
            s.push('?');
            s.push_str(q);
        }
        let url = WsUrl::parse(&s).unwrap();
        prop_assert_eq!(url.is_secure(), secure);
        prop_assert_eq!(url.host(), host.as_str());
        prop_assert_eq!(url.port(), port.unwrap_or(if secure { 443 } else { 80 }));
        let expected_path = if path.is_empty() { "/" } else { path.as_str() };
        prop_assert_eq!(url.path(), expected_path);
        prop_assert_eq!(url.query(), query.as_deref());
    }
}
