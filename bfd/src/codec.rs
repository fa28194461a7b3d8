//! BFD Control packets (RFC 5880 §4.1), without authentication (keepalived has none), and
//! the receive checks keepalived's `bfd_check_packet` makes, in its order. Every way a
//! packet can be refused is a [`Reject`], which the daemon counts.

/// Session states as carried in the Sta field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Held down by an administrator (or stopping).
    AdminDown = 0,
    /// No session established.
    Down = 1,
    /// Heard the neighbour, waiting for it to hear us.
    Init = 2,
    /// Both ends hear each other.
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// As keepalived's logs write it.
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1).
pub mod diag {
    /// No diagnostic.
    pub const NONE: u8 = 0;
    /// Control detection time expired.
    pub const EXPIRED: u8 = 1;
    /// The neighbour signalled the session down.
    pub const NEIGHBOR_DOWN: u8 = 3;
    /// Administratively down.
    pub const ADMIN_DOWN: u8 = 7;
    /// The highest code RFC 5880 defines.
    pub const MAX: u8 = 8;

    /// keepalived's `BFD_DIAG_STR`.
    pub fn name(d: u8) -> &'static str {
        match d {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            _ => "Unknown",
        }
    }
}

/// The mandatory section of a Control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Diagnostic code ([`diag`]).
    pub diag: u8,
    /// The sender's session state.
    pub state: State,
    /// P bit: the sender asks for a Final.
    pub poll: bool,
    /// F bit: the answer to a Poll.
    pub final_: bool,
    /// C bit: control plane independent.
    pub cpi: bool,
    /// A bit: authentication section present.
    pub auth: bool,
    /// D bit: demand mode.
    pub demand: bool,
    /// M bit: multipoint (must be 0).
    pub multipoint: bool,
    /// Detection time multiplier.
    pub detect_mult: u8,
    /// The sender's discriminator.
    pub my_discr: u32,
    /// The receiver's discriminator as the sender knows it (0 until learnt).
    pub your_discr: u32,
    /// µs
    pub desired_min_tx: u32,
    /// µs
    pub required_min_rx: u32,
    /// µs
    pub required_min_echo_rx: u32,
}

/// The length of a Control packet without authentication.
pub const LEN: usize = 24;
/// UDP port of single-hop control packets (RFC 5881).
pub const CONTROL_PORT: u16 = 3784;

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    /// Shorter than the mandatory section.
    TooShort,
    /// The length field does not match the datagram.
    LengthMismatch,
    /// TTL / hop limit below the session's minimum (GTSM).
    Ttl,
    /// Not version 1.
    Version,
    /// Detect Mult is zero.
    ZeroMultiplier,
    /// The M bit is set.
    Multipoint,
    /// My Discriminator is zero.
    ZeroMyDiscriminator,
    /// Your Discriminator is zero outside Down/AdminDown.
    ZeroYourDiscriminator,
    /// Both Poll and Final are set.
    PollAndFinal,
    /// A diagnostic code RFC 5880 does not define.
    Diagnostic,
    /// Authentication present: keepalived supports none.
    Auth,
    /// No session for its discriminator / source address.
    NoSession,
    /// The session is AdminDown.
    AdminDown,
}

impl Reject {
    /// The reason's name in counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            Reject::TooShort => "too short",
            Reject::LengthMismatch => "length mismatch",
            Reject::Ttl => "bad ttl",
            Reject::Version => "bad version",
            Reject::ZeroMultiplier => "zero multiplier",
            Reject::Multipoint => "multipoint",
            Reject::ZeroMyDiscriminator => "zero my discriminator",
            Reject::ZeroYourDiscriminator => "zero your discriminator",
            Reject::PollAndFinal => "poll and final",
            Reject::Diagnostic => "bad diagnostic",
            Reject::Auth => "authentication",
            Reject::NoSession => "no session",
            Reject::AdminDown => "session admin down",
        }
    }
}

impl Packet {
    /// The packet's 24 bytes on the wire.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (1 << 5) | (self.diag & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.cpi) << 3)
            | (u8::from(self.auth) << 2)
            | (u8::from(self.demand) << 1)
            | u8::from(self.multipoint);
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }

    /// Decodes and checks a received packet; `ttl`: its IP TTL/hop limit (0 when unknown),
    /// `min_ttl`: the lowest one accepted (GTSM, RFC 5881 §5).
    pub fn decode(b: &[u8], ttl: u8, min_ttl: u8) -> Result<Packet, Reject> {
        if b.len() < LEN {
            return Err(Reject::TooShort);
        }
        if usize::from(b[3]) != b.len() {
            return Err(Reject::LengthMismatch);
        }
        if ttl != 0 && ttl < min_ttl {
            return Err(Reject::Ttl);
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Packet {
            diag: b[0] & 0x1f,
            state: State::from_bits(b[1] >> 6),
            poll: b[1] & 0x20 != 0,
            final_: b[1] & 0x10 != 0,
            cpi: b[1] & 0x08 != 0,
            auth: b[1] & 0x04 != 0,
            demand: b[1] & 0x02 != 0,
            multipoint: b[1] & 0x01 != 0,
            detect_mult: b[2],
            my_discr: word(4),
            your_discr: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        };
        if b[0] >> 5 != 1 {
            return Err(Reject::Version);
        }
        if p.detect_mult == 0 {
            return Err(Reject::ZeroMultiplier);
        }
        if p.multipoint {
            return Err(Reject::Multipoint);
        }
        if p.my_discr == 0 {
            return Err(Reject::ZeroMyDiscriminator);
        }
        if p.your_discr == 0 && !matches!(p.state, State::Down | State::AdminDown) {
            return Err(Reject::ZeroYourDiscriminator);
        }
        if p.poll && p.final_ {
            return Err(Reject::PollAndFinal);
        }
        if p.diag > diag::MAX {
            return Err(Reject::Diagnostic);
        }
        if p.auth {
            return Err(Reject::Auth);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7's first packet to an FRR bfdd (tcpdump): Down, mult 3, my discr
    /// 0x3c22af49, desired min tx 1 s (idle), required min rx 100 ms.
    const KEEPALIVED_DOWN: [u8; 24] = [
        0x20, 0x40, 0x03, 0x18, 0x3c, 0x22, 0xaf, 0x49, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40, 0x00,
        0x01, 0x86, 0xa0, 0, 0, 0, 0,
    ];
    /// FRR's answer: Init, your discr = keepalived's, echo rx 50 ms.
    const FRR_INIT: [u8; 24] = [
        0x20, 0x80, 0x03, 0x18, 0x5e, 0x6b, 0xaf, 0x69, 0x3c, 0x22, 0xaf, 0x49, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0xc3, 0x50,
    ];
    /// keepalived's Up with Poll, switching to 100 ms.
    const KEEPALIVED_UP_POLL: [u8; 24] = [
        0x20, 0xe0, 0x03, 0x18, 0x3c, 0x22, 0xaf, 0x49, 0x5e, 0x6b, 0xaf, 0x69, 0x00, 0x01, 0x86,
        0xa0, 0x00, 0x01, 0x86, 0xa0, 0, 0, 0, 0,
    ];

    #[test]
    fn captured_packets_round_trip() {
        for raw in [KEEPALIVED_DOWN, FRR_INIT, KEEPALIVED_UP_POLL] {
            let p = Packet::decode(&raw, 255, 255).unwrap();
            assert_eq!(p.encode(), raw);
        }
        let up = Packet::decode(&KEEPALIVED_UP_POLL, 255, 255).unwrap();
        assert_eq!(up.state, State::Up);
        assert!(up.poll && !up.final_);
        assert_eq!(up.desired_min_tx, 100_000);
        let init = Packet::decode(&FRR_INIT, 255, 255).unwrap();
        assert_eq!(init.state, State::Init);
        assert_eq!(init.your_discr, 0x3c22_af49);
        assert_eq!(init.required_min_echo_rx, 50_000);
    }

    #[test]
    fn hostile_packets_are_refused() {
        let base = KEEPALIVED_DOWN;
        assert_eq!(Packet::decode(&base[..20], 255, 255), Err(Reject::TooShort));
        let mut long = base.to_vec();
        long.push(0);
        assert_eq!(Packet::decode(&long, 255, 255), Err(Reject::LengthMismatch));
        assert_eq!(Packet::decode(&base, 254, 255), Err(Reject::Ttl));
        let with = |i: usize, v: u8| {
            let mut b = base;
            b[i] = v;
            Packet::decode(&b, 255, 255)
        };
        assert_eq!(with(0, 0x40), Err(Reject::Version));
        assert_eq!(with(2, 0), Err(Reject::ZeroMultiplier));
        assert_eq!(with(1, 0x41), Err(Reject::Multipoint));
        assert_eq!(with(1, 0xc0), Err(Reject::ZeroYourDiscriminator));
        assert_eq!(with(1, 0x70), Err(Reject::PollAndFinal));
        assert_eq!(with(0, 0x3f), Err(Reject::Diagnostic));
        assert_eq!(with(1, 0x44), Err(Reject::Auth));
        let mut z = base;
        z[4..8].fill(0);
        assert_eq!(
            Packet::decode(&z, 255, 255),
            Err(Reject::ZeroMyDiscriminator)
        );
    }
}
