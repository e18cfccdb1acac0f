//! The proxy exchanges, sans-IO, by RFC section: HTTP CONNECT (RFC 9110
//! 9.3.6, Basic credentials RFC 7617), SOCKS5 (RFC 1928) with
//! username/password (RFC 1929), every answer split at every byte, the
//! bound on an HTTP answer head, and the environment variables' rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tether_handshake::proxy::{
    EnvProxy, MAX_PROXY_HEAD, ProxyConnect, ProxyError, ProxyKind, ProxyUrl, Target,
    connect_request, no_proxy_matches, parse_socks5_reply, proxy_from_env, socks5_request,
};

fn name(host: &str, port: u16) -> Target {
    Target::Name(host.to_owned(), port)
}

/// Feeds `answer` to a fresh copy of the exchange (made by `make`) split
/// at every byte position (two pieces), and one byte at a time; every
/// split must give the same outcome as the whole.
fn every_split(make: impl Fn() -> ProxyConnect, answer: &[u8]) -> Result<(), ProxyError> {
    let mut whole = make();
    let expected = whole.receive(answer).map(|()| whole.is_done());
    for at in 0..=answer.len() {
        let mut split = make();
        let (a, b) = answer.split_at(at);
        let got = split
            .receive(a)
            .and_then(|()| split.receive(b))
            .map(|()| split.is_done());
        assert_eq!(got, expected, "split at {at}");
    }
    let mut bytewise = make();
    let got = answer
        .iter()
        .try_for_each(|b| bytewise.receive(&[*b]))
        .map(|()| bytewise.is_done());
    assert_eq!(got, expected, "one byte at a time");
    expected.map(|_| ())
}

// ---- HTTP CONNECT ----

#[test]
fn rfc9110_9_3_6_connect_request_is_the_authority_form_with_host() {
    assert_eq!(
        connect_request(&name("example.com", 443), None),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    );
    assert_eq!(
        connect_request(&Target::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST), 9001), None),
        b"CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n"
    );
    assert_eq!(
        connect_request(&name("::1", 80), None),
        b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
    );
}

#[test]
fn rfc7617_2_basic_credentials_go_in_proxy_authorization() {
    // the example of RFC 7617 section 2
    let request = connect_request(&name("example.com", 80), Some(("Aladdin", "open sesame")));
    let text = String::from_utf8(request).unwrap();
    assert!(
        text.contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
        "{text}"
    );
    // from the URL's userinfo, percent-decoded
    let proxy = ProxyUrl::parse("http://Aladdin:open%20sesame@proxy:3128").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("example.com", 80)).unwrap();
    assert_eq!(exchange.take_output(), text.as_bytes());
    assert!(exchange.take_output().is_empty(), "written once");
}

#[test]
fn rfc9110_9_3_6_a_2xx_answer_opens_the_tunnel_in_any_split() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let make = || ProxyConnect::new(&proxy, name("example.com", 443)).unwrap();
    every_split(
        make,
        b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n",
    )
    .unwrap();
    // any 2xx, and an HTTP/1.0 answer
    every_split(make, b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
    let mut exchange = make();
    exchange.receive(b"HTTP/1.1 200 OK\r\n").unwrap();
    assert!(!exchange.is_done(), "the head has not ended");
}

#[test]
fn rfc9110_9_3_6_407_is_refused_naming_status_and_reason() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let answer =
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
    let err = every_split(|| ProxyConnect::new(&proxy, name("h", 1)).unwrap(), answer).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("the proxy refused CONNECT: 407 Proxy Authentication Required"),
        "{text}"
    );
    assert!(text.contains("http://user:password@host:port"), "{text}");
    // with credentials sent: they were refused
    let proxy = ProxyUrl::parse("http://u:wrong@proxy:3128").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let text = exchange.receive(answer).unwrap_err().to_string();
    assert!(
        text.contains("refused the user name and password"),
        "{text}"
    );
    // another refusal, as is
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let err = exchange
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        .unwrap_err();
    assert_eq!(err.to_string(), "the proxy refused CONNECT: 403 Forbidden");
}

/// Interim answers before the proxy's 200 are passed over (RFC 9110
/// section 15.2), the tunnel's bytes after it left whole; a proxy port
/// that answers with TLS is named as such. A 100 Continue was taken for a
/// refusal, and TLS was reported as a bad HTTP version.
#[test]
fn rfc9110_15_2_interim_answers_pass_and_a_tls_proxy_is_named() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let make = || ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    every_split(
        make,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    )
    .unwrap();
    let err = every_split(make, b"\x15\x03\x01\x00\x02\x02\x46").unwrap_err();
    assert!(err.to_string().contains("answered with TLS"), "{err}");
}

#[test]
fn rfc9110_9_3_6_an_answer_that_is_not_http_is_named() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let text = exchange.receive(b"\x05\x00 hello").unwrap_err().to_string();
    assert!(
        text.starts_with("the proxy's answer to CONNECT is not HTTP"),
        "{text}"
    );
}

#[test]
fn rfc9110_9_3_6_the_answer_head_is_bounded() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    exchange.receive(b"HTTP/1.1 200 OK\r\n").unwrap();
    let header = format!("X-Filler: {}\r\n", "a".repeat(200));
    let header = header.as_bytes();
    let mut sent = 17;
    let err = loop {
        match exchange.receive(header) {
            Ok(()) => sent += header.len(),
            Err(e) => break e,
        }
        assert!(sent < MAX_PROXY_HEAD, "no error by {sent} bytes");
    };
    assert_eq!(err, ProxyError::HeadTooLarge);
    assert!(err.to_string().contains("8192 bytes"), "{err}");
}

#[test]
fn rfc9110_9_3_6_bytes_after_the_answer_are_the_servers() {
    let proxy = ProxyUrl::parse("http://proxy:3128").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    exchange
        .receive(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101")
        .unwrap();
    exchange.receive(b" Switching").unwrap();
    assert!(exchange.is_done());
    // refused where the server may not speak first (TLS, HTTP/1.1)...
    assert_eq!(
        exchange.expect_silence(),
        Err(ProxyError::TrailingBytes(22))
    );
    // ...handed on where it may (HTTP/2's SETTINGS, RFC 9113 section 3.4)
    assert_eq!(exchange.take_leftover(), b"HTTP/1.1 101 Switching");
    assert_eq!(exchange.expect_silence(), Ok(()));
}

#[test]
fn rfc1928_6_bytes_after_the_socks5_reply_are_the_servers() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let _ = exchange.take_output();
    exchange.receive(&[5, 0]).unwrap();
    let _ = exchange.take_output();
    // succeeded, bound to 0.0.0.0:0, then the server's first bytes
    exchange
        .receive(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xab, 0xcd])
        .unwrap();
    assert!(exchange.is_done());
    assert_eq!(exchange.take_leftover(), [0xab, 0xcd]);
}

// ---- SOCKS5 ----

#[test]
fn rfc1928_3_greeting_offers_no_authentication_and_password_with_credentials() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    assert_eq!(proxy.port(), 1080);
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    assert_eq!(exchange.take_output(), [5, 1, 0]);
    let proxy = ProxyUrl::parse("socks5h://u:p@proxy:1080").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    assert_eq!(exchange.take_output(), [5, 2, 0, 2]);
}

#[test]
fn rfc1928_4_request_atyp_3_sends_the_host_name_for_remote_dns() {
    let proxy = ProxyUrl::parse("socks5h://proxy:1080").unwrap();
    assert!(!proxy.resolves_locally());
    let mut exchange = ProxyConnect::new(&proxy, name("example.com", 443)).unwrap();
    exchange.take_output();
    exchange.receive(&[5, 0]).unwrap();
    let mut expected = vec![5, 1, 0, 3, 11];
    expected.extend_from_slice(b"example.com");
    expected.extend_from_slice(&[1, 187]);
    assert_eq!(exchange.take_output(), expected);
}

#[test]
fn rfc1928_4_request_atyp_1_and_4_for_addresses() {
    assert_eq!(
        socks5_request(&Target::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9001)).unwrap(),
        [5, 1, 0, 1, 127, 0, 0, 1, 0x23, 0x29]
    );
    let v6 = socks5_request(&Target::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST), 80)).unwrap();
    assert_eq!(v6.len(), 4 + 16 + 2);
    assert_eq!(&v6[..4], [5, 1, 0, 4]);
    assert_eq!(&v6[4..20], Ipv6Addr::LOCALHOST.octets());
    assert_eq!(&v6[20..], [0, 80]);
    // socks5:// resolves here: a name is refused, naming socks5h://
    let proxy = ProxyUrl::parse("socks5://proxy").unwrap();
    assert!(proxy.resolves_locally());
    let err = ProxyConnect::new(&proxy, name("example.com", 80)).unwrap_err();
    assert!(err.to_string().contains("socks5h://"), "{err}");
}

#[test]
fn rfc1928_5_a_host_name_over_255_bytes_cannot_be_sent() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    let err = ProxyConnect::new(&proxy, name(&"a".repeat(256), 80)).unwrap_err();
    assert_eq!(err, ProxyError::TooLong("host name"));
    assert!(ProxyConnect::new(&proxy, name(&"a".repeat(255), 80)).is_ok());
}

#[test]
fn rfc1928_3_no_acceptable_methods_is_named() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    let err = every_split(
        || ProxyConnect::new(&proxy, name("h", 1)).unwrap(),
        &[5, 0xFF],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("socks5://user:password@host:port"),
        "{err}"
    );
    // a method we did not offer
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let err = exchange.receive(&[5, 2]).unwrap_err();
    assert!(err.to_string().contains("did not offer"), "{err}");
}

#[test]
fn rfc1928_3_a_reply_of_another_version_is_not_socks5() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let err = exchange
        .receive(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        .unwrap_err();
    assert!(err.to_string().contains("is it a SOCKS5 proxy?"), "{err}");
}

#[test]
fn rfc1929_2_username_password_request_and_success() {
    let proxy = ProxyUrl::parse("socks5h://alice:s%3Acret@proxy").unwrap();
    let make = || {
        let mut exchange = ProxyConnect::new(&proxy, name("example.com", 80)).unwrap();
        exchange.take_output();
        exchange
    };
    let mut exchange = make();
    exchange.receive(&[5, 2]).unwrap();
    assert_eq!(
        exchange.take_output(),
        [&[1, 5][..], b"alice", &[6], b"s:cret"].concat()
    );
    exchange.receive(&[1, 0]).unwrap();
    assert_eq!(exchange.take_output()[..4], [5, 1, 0, 3]);
    assert!(!exchange.is_done());
    // the whole answer sequence in one read and split at every byte:
    // method, auth status, then a reply with a bound IPv4 address
    every_split(make, &[5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x1F, 0x90]).unwrap();
}

#[test]
fn rfc1929_2_a_failed_status_is_an_authentication_failure() {
    let proxy = ProxyUrl::parse("socks5h://alice:wrong@proxy").unwrap();
    let err = every_split(
        || ProxyConnect::new(&proxy, name("h", 1)).unwrap(),
        &[5, 2, 1, 1],
    )
    .unwrap_err();
    assert_eq!(err, ProxyError::SocksAuthFailed(1));
    assert!(
        err.to_string().starts_with("SOCKS5 authentication failed"),
        "{err}"
    );
    // version 1 of RFC 1929, not 5
    let mut exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    let err = exchange.receive(&[5, 2, 5, 0]).unwrap_err();
    assert!(err.to_string().contains("RFC 1929"), "{err}");
}

#[test]
fn rfc1929_2_credentials_over_255_bytes_cannot_be_sent() {
    let long = "u".repeat(256);
    let proxy = ProxyUrl::parse(&format!("socks5h://{long}:p@proxy")).unwrap();
    let err = ProxyConnect::new(&proxy, name("h", 1)).unwrap_err();
    assert_eq!(err, ProxyError::TooLong("SOCKS5 user name"));
}

#[test]
fn rfc1928_6_reply_succeeded_with_each_address_type_in_any_split() {
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    let make = || {
        let mut exchange = ProxyConnect::new(&proxy, name("example.com", 80)).unwrap();
        exchange.take_output();
        exchange
    };
    let mut domain = vec![5, 0, 5, 0, 0, 3, 9];
    domain.extend_from_slice(b"localhost");
    domain.extend_from_slice(&[0, 80]);
    let mut v6 = vec![5, 0, 5, 0, 0, 4];
    v6.extend_from_slice(&[0; 16]);
    v6.extend_from_slice(&[0, 80]);
    for answer in [vec![5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80], domain, v6] {
        every_split(make, &answer).unwrap();
        let mut exchange = make();
        exchange.receive(&answer).unwrap();
        assert!(exchange.is_done());
        // the CONNECT request was queued on the method selection, once
        assert_eq!(
            exchange.take_output(),
            socks5_request(&name("example.com", 80)).unwrap()
        );
        assert!(exchange.take_output().is_empty());
    }
}

#[test]
fn rfc1928_6_reply_codes_are_named_in_words() {
    let meanings = [
        (1, "general SOCKS server failure"),
        (2, "connection not allowed by ruleset"),
        (3, "network unreachable"),
        (4, "host unreachable"),
        (5, "connection refused"),
        (6, "TTL expired"),
        (7, "command not supported"),
        (8, "address type not supported"),
        (9, "unassigned reply code"),
    ];
    let proxy = ProxyUrl::parse("socks5h://proxy").unwrap();
    for (code, words) in meanings {
        let err = every_split(
            || ProxyConnect::new(&proxy, name("h", 1)).unwrap(),
            &[5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0],
        )
        .unwrap_err();
        assert_eq!(err, ProxyError::SocksRefused(code));
        assert_eq!(
            err.to_string(),
            format!("the SOCKS5 proxy could not connect: {words} (reply {code})")
        );
    }
}

#[test]
fn rfc1928_6_reply_general_failure() {
    // refused as soon as the code came, without waiting for the address
    assert_eq!(
        parse_socks5_reply(&[5, 1]),
        Err(ProxyError::SocksRefused(1))
    );
    assert_eq!(parse_socks5_reply(&[5]), Ok(None));
    assert_eq!(parse_socks5_reply(&[5, 0, 0, 1, 1, 2, 3]), Ok(None));
    assert!(parse_socks5_reply(&[5, 0, 0, 7]).is_err(), "address type 7");
}

#[test]
fn proxy_closing_early_is_named() {
    let proxy = ProxyUrl::parse("http://proxy").unwrap();
    let exchange = ProxyConnect::new(&proxy, name("h", 1)).unwrap();
    assert_eq!(
        exchange.eof().to_string(),
        "the proxy closed the connection before answering"
    );
}

// ---- proxy URLs ----

#[test]
fn proxy_urls_as_curl_reads_them() {
    let bare = ProxyUrl::parse("proxy.example:3128").unwrap();
    assert_eq!(bare.kind(), ProxyKind::Http);
    assert_eq!((bare.host(), bare.port()), ("proxy.example", 3128));
    let default_port = ProxyUrl::parse("http://proxy.example/").unwrap();
    assert_eq!(default_port.port(), 1080);
    let v6 = ProxyUrl::parse("socks5h://[::1]:1081").unwrap();
    assert_eq!((v6.host(), v6.port()), ("::1", 1081));
    let with_password = ProxyUrl::parse("HTTP://bob:p%40ss@Proxy:8080").unwrap();
    assert_eq!(with_password.credentials(), Some(("bob", "p@ss")));
    // never shows the password
    assert_eq!(with_password.to_string(), "http://bob:***@proxy:8080");
    assert!(!format!("{with_password:?}").contains("p@ss"));
    for bad in [
        "https://proxy:443",
        "ftp://proxy",
        "http://:80",
        "http://proxy:x",
        "http://p/path",
    ] {
        let err = ProxyUrl::parse(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid proxy URL"),
            "{bad}: {err}"
        );
    }
}

// ---- the environment ----

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn chosen(result: EnvProxy) -> Option<(String, &'static str)> {
    match result {
        EnvProxy::Use { proxy, variable } => Some((proxy.to_string(), variable)),
        _ => None,
    }
}

#[test]
fn env_https_proxy_for_wss_and_http_proxy_for_ws() {
    let vars = env(&[
        ("HTTPS_PROXY", "http://secure:1"),
        ("http_proxy", "http://plain:2"),
    ]);
    assert_eq!(
        chosen(proxy_from_env(true, "example.com", 443, &vars).unwrap()),
        Some(("http://secure:1".into(), "HTTPS_PROXY"))
    );
    assert_eq!(
        chosen(proxy_from_env(false, "example.com", 80, &vars).unwrap()),
        Some(("http://plain:2".into(), "http_proxy"))
    );
    // lower case first; empty is unset
    let vars = env(&[
        ("https_proxy", "socks5h://lower:3"),
        ("HTTPS_PROXY", "http://upper:4"),
        ("http_proxy", ""),
    ]);
    assert_eq!(
        chosen(proxy_from_env(true, "h", 443, &vars).unwrap()),
        Some(("socks5h://lower:3".into(), "https_proxy"))
    );
    assert_eq!(
        proxy_from_env(false, "h", 80, &vars).unwrap(),
        EnvProxy::Unset
    );
}

/// Under CGI (`REQUEST_METHOD` set) a request's `Proxy:` header arrives
/// as `HTTP_PROXY` ("httpoxy", CVE-2016-5385), and as `http_proxy` too
/// where variable names ignore case (Windows): neither is taken as a
/// setting for ws://, so a client cannot steer the program's connections
/// to its own proxy.
#[test]
fn env_http_proxy_upper_case_is_ignored_under_cgi() {
    let vars = env(&[
        ("HTTP_PROXY", "http://evil:8080"),
        ("REQUEST_METHOD", "GET"),
    ]);
    assert_eq!(
        proxy_from_env(false, "h", 80, &vars).unwrap(),
        EnvProxy::Unset
    );
    let vars = env(&[
        ("http_proxy", "http://evil:8080"),
        ("REQUEST_METHOD", "GET"),
    ]);
    assert_eq!(
        proxy_from_env(false, "h", 80, &vars).unwrap(),
        EnvProxy::Unset
    );
    let vars = env(&[("HTTP_PROXY", "http://upper:2")]);
    assert_eq!(
        chosen(proxy_from_env(false, "h", 80, &vars).unwrap()),
        Some(("http://upper:2".into(), "HTTP_PROXY"))
    );
}

#[test]
fn env_all_proxy_is_the_fallback() {
    let vars = env(&[("ALL_PROXY", "socks5://all:5")]);
    assert_eq!(
        chosen(proxy_from_env(true, "h", 443, &vars).unwrap()),
        Some(("socks5://all:5".into(), "ALL_PROXY"))
    );
    let vars = env(&[
        ("ALL_PROXY", "socks5://all:5"),
        ("HTTPS_PROXY", "http://s:1"),
    ]);
    assert_eq!(
        chosen(proxy_from_env(true, "h", 443, &vars).unwrap()),
        Some(("http://s:1".into(), "HTTPS_PROXY"))
    );
    assert_eq!(
        proxy_from_env(true, "h", 443, env(&[])).unwrap(),
        EnvProxy::Unset
    );
}

#[test]
fn env_no_proxy_exempts_hosts_as_curl_does() {
    let vars = env(&[
        ("https_proxy", "http://p:1"),
        ("NO_PROXY", "example.com, .internal,10.0.0.1 localhost:9001"),
    ]);
    let bypassed = |host: &str, port: u16| {
        matches!(
            proxy_from_env(true, host, port, &vars).unwrap(),
            EnvProxy::Bypassed {
                variable: "NO_PROXY"
            }
        )
    };
    assert!(bypassed("example.com", 443));
    assert!(bypassed("www.Example.COM", 443), "subdomain, any case");
    assert!(!bypassed("notexample.com", 443), "whole labels only");
    assert!(bypassed("db.internal", 443), "leading dot");
    assert!(
        bypassed("internal", 443),
        "leading dot: the domain itself too"
    );
    assert!(bypassed("10.0.0.1", 443));
    assert!(!bypassed("10.0.0.10", 443), "addresses match exactly");
    assert!(bypassed("localhost", 9001));
    assert!(
        !bypassed("localhost", 9002),
        "an entry with a port matches it only"
    );
    assert!(!bypassed("elsewhere.org", 443));
    // * exempts everything; IPv6 entries
    assert!(no_proxy_matches("*", "anything", 1));
    assert!(no_proxy_matches("::1", "::1", 80));
    assert!(no_proxy_matches("[::1]:80", "[::1]", 80));
    assert!(!no_proxy_matches("", "h", 1));
}

#[test]
fn env_a_bad_proxy_url_names_the_variable() {
    let vars = env(&[("HTTPS_PROXY", "gopher://x")]);
    let err = proxy_from_env(true, "h", 443, vars).unwrap_err();
    assert!(err.to_string().contains("in HTTPS_PROXY"), "{err}");
}

/// An error about a proxy URL, or a WebSocket URL, never shows its
/// password: such errors end up in logs (through `HTTPS_PROXY` too). The
/// raw URL was quoted whole.
#[test]
fn url_errors_never_show_the_password() {
    for url in [
        "http://alice:s3cret@proxy:99999",
        "ftp://alice:s3cret@proxy:3128",
        "http://alice:s3cret@proxy:3128/path",
        "http://alice:pa/s3cret@proxy:8080",
        "http://alice:s3cret?x@proxy:8080",
    ] {
        let err = ProxyUrl::parse(url).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("***@proxy"), "{err}");
    }
    for url in ["alice:s3cret@host/x", "//u:s3cret@h", "ws:/u:s3cret@h"] {
        let err = tether_handshake::WsUrl::parse(url).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}

/// A proxy URL is read strictly: a percent sign takes two hex digits ("%+1"
/// was read as 0x01), a port is digits and not 0 ("+80" and "0" were
/// taken), and a user name may not hold a colon once decoded, since Basic
/// credentials are `user:password` (RFC 7617 section 2).
#[test]
fn rfc7617_2_a_proxy_url_is_read_strictly() {
    for url in [
        "http://u%+1:p@proxy:3128",
        "http://proxy:+80",
        "http://proxy:0",
        "http://[::1]:+80",
        "http://a%3Ab:p@proxy:3128",
    ] {
        assert!(ProxyUrl::parse(url).is_err(), "{url}");
    }
    assert!(ProxyUrl::parse("http://a%3Ab@proxy:3128").is_err());
    assert!(ProxyUrl::parse("http://a%20b:p%3Aq@proxy:3128").is_ok());
}
