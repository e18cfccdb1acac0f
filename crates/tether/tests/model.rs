//! Model-based proptest: random sequences of incoming frames (valid and
//! invalid, fed in random splits) and user operations, checked step by step
//! against a small reference model of the states, events and output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use tether::{CloseCode, Event, Message, Role, State};

#[derive(Clone, Debug)]
enum Incoming {
    Data { op: u8, fin: bool, payload: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
    ReservedOpcode(u8),
    ReservedBits,
    ControlTooLong,
    ControlWithoutFin,
}

#[derive(Clone, Debug)]
enum Step {
    Receive(Incoming, Vec<prop::sample::Index>),
    SendText(String),
    Close(u16),
    Ping,
}

/// What one step should produce.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Ev {
    Message(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Closed { code: u16, clean: bool },
}

struct Model {
    state: State,
    open: Option<(u8, Vec<u8>)>,
}

fn valid_prefix(b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn valid_code(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Model {
    fn fail(&mut self, code: u16, evs: &mut Vec<Ev>, out: &mut Vec<u8>) {
        if self.state == State::Open {
            out.push(CLOSE);
        }
        self.state = State::Closed;
        self.open = None;
        evs.push(Ev::Closed { code, clean: false });
    }

    /// Applies a step; returns (events, output opcodes, whether the call errs).
    fn step(&mut self, step: &Step) -> (Vec<Ev>, Vec<u8>, bool) {
        let (mut evs, mut out) = (Vec::new(), Vec::new());
        let terminal = self.state.is_terminal();
        let sendable = self.state == State::Open;
        match step {
            Step::Receive(_, _) if terminal => {}
            Step::Receive(inc, _) => match inc {
                Incoming::Data { op, fin, payload } => match (*op, self.open.take()) {
                    (0, None) | (1 | 2, Some(_)) => self.fail(1002, &mut evs, &mut out),
                    (op, prev) => {
                        let (kind, mut buf) = prev.unwrap_or((op, Vec::new()));
                        buf.extend_from_slice(payload);
                        if kind == 1 && !valid_prefix(&buf) {
                            self.fail(1007, &mut evs, &mut out);
                        } else if *fin {
                            if kind == 1 && std::str::from_utf8(&buf).is_err() {
                                self.fail(1007, &mut evs, &mut out);
                            } else {
                                evs.push(Ev::Message(buf));
                            }
                        } else {
                            self.open = Some((kind, buf));
                        }
                    }
                },
                Incoming::Ping(p) => {
                    evs.push(Ev::Ping(p.clone()));
                    // answered after our own Close too (RFC 6455 5.5.2)
                    if sendable || self.state == State::CloseSent {
                        out.push(PONG);
                    }
                }
                Incoming::Pong(p) => evs.push(Ev::Pong(p.clone())),
                Incoming::Close(code) => match code {
                    Some(c) if !valid_code(*c) => self.fail(1002, &mut evs, &mut out),
                    _ => {
                        let code = code.unwrap_or(1005);
                        if sendable {
                            out.push(CLOSE);
                        }
                        self.state = State::Closed;
                        self.open = None;
                        evs.push(Ev::Closed { code, clean: true });
                    }
                },
                Incoming::ReservedOpcode(_)
                | Incoming::ReservedBits
                | Incoming::ControlTooLong
                | Incoming::ControlWithoutFin => self.fail(1002, &mut evs, &mut out),
            },
            Step::SendText(_) | Step::Ping => {
                if !sendable {
                    return (evs, out, true);
                }
                out.push(if matches!(step, Step::Ping) {
                    PING
                } else {
                    TEXT
                });
            }
            Step::Close(code) => {
                if !sendable || !valid_code(*code) {
                    return (evs, out, true);
                }
                out.push(CLOSE);
                self.state = State::CloseSent;
            }
        }
        (evs, out, false)
    }
}

fn encode(role: Role, inc: &Incoming) -> Vec<u8> {
    match inc {
        Incoming::Data { op, fin, payload } => raw_frame(role, *fin, 0, *op, payload),
        Incoming::Ping(p) => frame(role, PING, p),
        Incoming::Pong(p) => frame(role, PONG, p),
        Incoming::Close(None) => frame(role, CLOSE, b""),
        Incoming::Close(Some(c)) => frame(role, CLOSE, &close_payload(*c, b"")),
        Incoming::ReservedOpcode(op) => frame(role, *op, b"x"),
        Incoming::ReservedBits => raw_frame(role, true, 4, TEXT, b"x"),
        Incoming::ControlTooLong => frame(role, PING, &[0; 126]),
        Incoming::ControlWithoutFin => raw_frame(role, false, 0, PING, b""),
    }
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::collection::vec(
            prop_oneof![Just(0xE2u8), Just(0x82), Just(0xAC), Just(b'a')],
            0..8
        ),
    ]
}

fn incoming() -> impl Strategy<Value = Incoming> {
    prop_oneof![
        8 => (0u8..3, any::<bool>(), payload()).prop_map(|(op, fin, payload)| Incoming::Data { op, fin, payload }),
        2 => proptest::collection::vec(any::<u8>(), 0..10).prop_map(Incoming::Ping),
        2 => proptest::collection::vec(any::<u8>(), 0..10).prop_map(Incoming::Pong),
        1 => prop_oneof![Just(None), Just(Some(1000)), Just(Some(4000)), Just(Some(1005)), Just(Some(999)), any::<u16>().prop_map(Some)].prop_map(Incoming::Close),
        1 => prop_oneof![3u8..8, 11u8..16].prop_map(Incoming::ReservedOpcode),
        1 => Just(Incoming::ReservedBits),
        1 => Just(Incoming::ControlTooLong),
        1 => Just(Incoming::ControlWithoutFin),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (incoming(), proptest::collection::vec(any::<prop::sample::Index>(), 0..4)).prop_map(|(i, c)| Step::Receive(i, c)),
        2 => "[a-z€]{0,8}".prop_map(Step::SendText),
        1 => prop_oneof![Just(1000u16), Just(4000), Just(1006)].prop_map(Step::Close),
        1 => Just(Step::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn connection_matches_reference_model(server in any::<bool>(), steps in proptest::collection::vec(step(), 1..25)) {
        let role = if server { Role::Server } else { Role::Client };
        let mut h = Harness::new(role);
        let mut model = Model { state: State::Open, open: None };
        for (i, s) in steps.iter().enumerate() {
            let (want_evs, want_out, want_err) = model.step(s);
            let got_err = match s {
                Step::Receive(inc, cuts) => {
                    let bytes = encode(role, inc);
                    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                    points.push(0);
                    points.push(bytes.len());
                    points.sort_unstable();
                    for w in points.windows(2) {
                        h.feed(&bytes[w[0]..w[1]]);
                    }
                    false
                }
                Step::SendText(t) => h.conn.send(Message::text(t.as_str())).is_err(),
                Step::Close(c) => h.conn.close(h.now, CloseCode::new(*c), "").is_err(),
                Step::Ping => h.conn.ping(bytes::Bytes::from_static(b"p")).is_err(),
            };
            let got_evs: Vec<Ev> = h.events().into_iter().map(|e| match e {
                Event::Message(m) => Ev::Message(m.as_bytes().to_vec()),
                Event::Ping(p) => Ev::Ping(p.to_vec()),
                Event::Pong(p) => Ev::Pong(p.to_vec()),
                Event::Closed(c) => Ev::Closed { code: c.code.as_u16(), clean: c.was_clean },
            }).collect();
            let got_out: Vec<u8> = h.output().iter().map(|f| f.opcode).collect();
            prop_assert_eq!(&got_evs, &want_evs, "events at step {} {:?}", i, s);
            prop_assert_eq!(&got_out, &want_out, "output at step {} {:?}", i, s);
            prop_assert_eq!(got_err, want_err, "error at step {} {:?}", i, s);
            prop_assert_eq!(h.conn.state(), model.state, "state at step {} {:?}", i, s);
        }
    }
}
