//! The two ends of a tunnel: [`DeviceChannel`] (Noise initiator) and [`CloudChannel`]
//! (responder). Each combines the handshake, the transport session and the stream of
//! sequence numbers, and does no I/O.
//!
//! Device, in order:
//! 1. [`DeviceChannel::start_handshake`] writes an initiation; persist
//!    [`Initiation::counter`] + 1 as the next counter before sending the frame.
//! 2. Feed every received frame to [`DeviceChannel::handle_frame`]; when it reports
//!    `handshake_completed`, send [`DeviceChannel::send_ack`] so the cloud starts using
//!    the new keys.
//! 3. [`DeviceChannel::send`] new messages, keep them until an `acked` value passes
//!    their sequence number, and [`DeviceChannel::resend`] them after a reconnect or a
//!    timeout.
//! 4. Call [`DeviceChannel::needs_rekey`] regularly and start a new handshake when true.
//!
//! Cloud: route initiations to [`CloudChannel::accept_initiation`] after looking up the
//! key id, everything else to [`CloudChannel::handle_frame`], and call
//! [`CloudChannel::acknowledge`] once a message is stored durably.

use rand_core::CryptoRngCore;

use crate::crypto::{CryptoProvider, TAG_LEN};
use crate::error::Error;
use crate::handshake::{self, CloudKeys, DeviceKeys, PeerKeys, PendingInitiation};
use crate::record;
use crate::stream::{Incoming, StreamState};
use crate::transport::{Limits, Session};
use crate::wire::{self, FrameKind, TRANSPORT_HEADER_LEN};

/// Channel health, as reported to the therapy logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// An authenticated frame arrived within the allowed silence.
    Healthy,
    /// No authenticated frame arrived for longer than the allowed silence, or none ever.
    Stale {
        /// Milliseconds since the last authenticated frame, if there was one.
        silent_ms: Option<u64>,
    },
}

/// A written initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initiation {
    /// Frame length in the output buffer.
    pub len: usize,
    /// Initiation counter used; the device must never use it or a smaller one again.
    pub counter: u32,
}

/// A sealed data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Sequence number assigned.
    pub seq: u64,
    /// Frame length in the output buffer.
    pub len: usize,
}

/// Device state restored after a reboot. The counter and sequence numbers only ever
/// grow, so a reboot never reuses a nonce or a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceResume {
    /// Next initiation counter to use.
    pub next_initiation_counter: u32,
    /// Sequence-number state saved before the reboot.
    pub stream: StreamState,
}

/// State shared by both ends once a session exists.
struct Endpoint<C> {
    session: Session<C>,
    stream: StreamState,
    last_authenticated_ms: Option<u64>,
}

impl<C: crate::crypto::Cipher> Endpoint<C> {
    fn new(limits: Limits, stream: StreamState) -> Self {
        Endpoint {
            session: Session::new(limits),
            stream,
            last_authenticated_ms: None,
        }
    }

    fn open_transport<'a>(
        &mut self,
        now_ms: u64,
        frame: &'a mut [u8],
    ) -> Result<Incoming<'a>, Error> {
        self.session.open(now_ms, frame)?;
        self.last_authenticated_ms = Some(now_ms);
        let end = frame.len() - TAG_LEN;
        let record = record::decode(&frame[TRANSPORT_HEADER_LEN..end])?;
        self.stream.on_record(record)
    }

    fn send(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error> {
        if !self.session.is_established() {
            return Err(Error::NotConnected);
        }
        let seq = self.stream.tx_next;
        let len = self.seal_data(now_ms, seq, payload, out)?;
        self.stream.allocate();
        Ok(Sent { seq, len })
    }

    fn resend(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if seq >= self.stream.tx_next {
            return Err(Error::UnexpectedFrame);
        }
        self.seal_data(now_ms, seq, payload, out)
    }

    fn seal_data(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let ack = self.stream.rx_committed;
        let oldest = self.stream.tx_oldest.min(seq);
        let body = out
            .get_mut(TRANSPORT_HEADER_LEN..)
            .ok_or(Error::BufferTooSmall {
                needed: wire::TRANSPORT_OVERHEAD,
            })?;
        let record_len = record::encode_data(ack, seq, oldest, payload, body)?;
        self.session.seal(now_ms, out, record_len)
    }

    fn send_ack(&mut self, now_ms: u64, out: &mut [u8]) -> Result<usize, Error> {
        let body = out
            .get_mut(TRANSPORT_HEADER_LEN..)
            .ok_or(Error::BufferTooSmall {
                needed: wire::TRANSPORT_OVERHEAD,
            })?;
        let record_len = record::encode_ack(self.stream.rx_committed, body)?;
        self.session.seal(now_ms, out, record_len)
    }

    fn health(&self, now_ms: u64, max_silence_ms: u64) -> Health {
        match self.last_authenticated_ms {
            Some(at) if now_ms.saturating_sub(at) <= max_silence_ms => Health::Healthy,
            Some(at) => Health::Stale {
                silent_ms: Some(now_ms.saturating_sub(at)),
            },
            None => Health::Stale { silent_ms: None },
        }
    }
}

/// The device's end of the tunnel (Noise initiator).
pub struct DeviceChannel<P: CryptoProvider> {
    provider: P,
    keys: DeviceKeys,
    endpoint: Endpoint<P::Cipher>,
    pending: Option<PendingInitiation>,
    next_counter: u32,
}

impl<P: CryptoProvider> DeviceChannel<P> {
    /// Creates the channel after a boot, from the persisted counters.
    pub fn new(provider: P, keys: DeviceKeys, limits: Limits, resume: DeviceResume) -> Self {
        DeviceChannel {
            provider,
            keys,
            endpoint: Endpoint::new(limits, resume.stream),
            pending: None,
            next_counter: resume.next_initiation_counter,
        }
    }

    /// Writes an initiation into `out` and waits for the response. A pending handshake
    /// is abandoned. The current session, if any, stays usable until the new one
    /// completes.
    pub fn start_handshake(
        &mut self,
        rng: &mut impl CryptoRngCore,
        out: &mut [u8],
    ) -> Result<Initiation, Error> {
        let counter = self.next_counter;
        if counter == u32::MAX {
            // A device that used four billion handshakes needs a new key id.
            return Err(Error::InitiationCountersExhausted);
        }
        let (pending, len) = handshake::initiate(&self.provider, &self.keys, counter, rng, out)?;
        self.next_counter = counter + 1;
        self.pending = Some(pending);
        Ok(Initiation { len, counter })
    }

    /// Processes a frame from the cloud. The payload of a data message is decrypted in
    /// place and returned as a slice of `frame`.
    pub fn handle_frame<'a>(
        &mut self,
        now_ms: u64,
        frame: &'a mut [u8],
    ) -> Result<Incoming<'a>, Error> {
        match wire::frame_kind(frame)? {
            FrameKind::Response => self.complete_handshake(now_ms, frame),
            FrameKind::Transport { .. } => self.endpoint.open_transport(now_ms, frame),
            FrameKind::Initiation => Err(Error::UnexpectedFrame),
        }
    }

    fn complete_handshake<'a>(&mut self, now_ms: u64, frame: &[u8]) -> Result<Incoming<'a>, Error> {
        // Only a response to our own initiation costs Diffie-Hellman work, and only once:
        // a failed response ends the attempt.
        let Some(pending) = self.pending.take() else {
            return Err(Error::UnexpectedFrame);
        };
        let phase = (pending.counter() & 1) as u8;
        let output = pending.complete(&self.provider, frame)?;
        self.endpoint
            .session
            .install_initiator(&self.provider, &output, phase, now_ms);
        self.endpoint.last_authenticated_ms = Some(now_ms);
        Ok(Incoming {
            handshake_completed: true,
            ack_due: true,
            ..Incoming::default()
        })
    }

    /// Seals `payload` as the next message and returns its sequence number. Keep the
    /// payload until an acknowledgement covers the sequence number.
    pub fn send(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error> {
        self.endpoint.send(now_ms, payload, out)
    }

    /// Seals an earlier message again under its original sequence number.
    pub fn resend(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.endpoint.resend(now_ms, seq, payload, out)
    }

    /// Seals an acknowledgement, which is also the heartbeat.
    pub fn send_ack(&mut self, now_ms: u64, out: &mut [u8]) -> Result<usize, Error> {
        self.endpoint.send_ack(now_ms, out)
    }

    /// Marks every received message below `next` as handled.
    pub fn acknowledge(&mut self, next: u64) {
        self.endpoint.stream.acknowledge(next);
    }

    /// Gives up every unacknowledged message below `seq`, for a device that lost its
    /// retransmission queue; the cloud then reports them as lost instead of waiting.
    pub fn abandon_before(&mut self, seq: u64) {
        let stream = &mut self.endpoint.stream;
        stream.tx_oldest = stream.tx_oldest.max(seq.min(stream.tx_next));
    }

    /// True when a session is established.
    pub fn is_established(&self) -> bool {
        self.endpoint.session.is_established()
    }

    /// True while an initiation waits for its response.
    pub fn is_handshaking(&self) -> bool {
        self.pending.is_some()
    }

    /// True when the keys reached a limit and a new handshake should start.
    pub fn needs_rekey(&self, now_ms: u64) -> bool {
        self.endpoint.session.needs_rekey(now_ms)
    }

    /// Health of the channel given the longest silence the therapy logic allows.
    pub fn health(&self, now_ms: u64, max_silence_ms: u64) -> Health {
        self.endpoint.health(now_ms, max_silence_ms)
    }

    /// State to persist so a reboot resumes safely.
    pub fn resume_state(&self) -> DeviceResume {
        DeviceResume {
            next_initiation_counter: self.next_counter,
            stream: self.endpoint.stream,
        }
    }

    /// Sequence-number state.
    pub fn stream(&self) -> &StreamState {
        &self.endpoint.stream
    }
}

/// A handshake the cloud accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Response frame length in the output buffer.
    pub len: usize,
    /// Initiation counter of the accepted handshake; persist it as the device's last.
    pub counter: u32,
}

/// The cloud's end of one device's tunnel (Noise responder).
pub struct CloudChannel<P: CryptoProvider> {
    provider: P,
    key_id: u32,
    endpoint: Endpoint<P::Cipher>,
}

impl<P: CryptoProvider> CloudChannel<P> {
    /// Creates the channel for device `key_id` with the stream state the cloud persisted.
    pub fn new(provider: P, key_id: u32, limits: Limits, stream: StreamState) -> Self {
        CloudChannel {
            provider,
            key_id,
            endpoint: Endpoint::new(limits, stream),
        }
    }

    /// Responds to an initiation from this channel's device: checks mac1 and the counter
    /// before any Diffie-Hellman work, then writes the response into `out`.
    ///
    /// The new keys are used for sending only after the device sent a frame under them.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_initiation(
        &mut self,
        now_ms: u64,
        cloud: &CloudKeys,
        peer: &PeerKeys,
        frame: &[u8],
        last_counter: Option<u32>,
        rng: &mut impl CryptoRngCore,
        out: &mut [u8],
    ) -> Result<Accepted, Error> {
        if peer.key_id != self.key_id {
            return Err(Error::UnknownKeyId {
                key_id: peer.key_id,
            });
        }
        let verified = handshake::verify_mac1(&self.provider, peer, frame)?;
        let counter = verified.header().counter;
        let (output, len) = handshake::respond(
            &self.provider,
            cloud,
            peer,
            verified,
            last_counter,
            rng,
            out,
        )?;
        let phase = (counter & 1) as u8;
        self.endpoint
            .session
            .install_responder(&self.provider, &output, phase, now_ms);
        Ok(Accepted { len, counter })
    }

    /// Processes a transport frame from the device.
    pub fn handle_frame<'a>(
        &mut self,
        now_ms: u64,
        frame: &'a mut [u8],
    ) -> Result<Incoming<'a>, Error> {
        match wire::frame_kind(frame)? {
            FrameKind::Transport { .. } => {
                let incoming = self.endpoint.open_transport(now_ms, frame)?;
                Ok(incoming)
            }
            FrameKind::Initiation | FrameKind::Response => Err(Error::UnexpectedFrame),
        }
    }

    /// Seals `payload` as the next message to the device.
    pub fn send(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error> {
        self.endpoint.send(now_ms, payload, out)
    }

    /// Seals an earlier message again under its original sequence number.
    pub fn resend(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.endpoint.resend(now_ms, seq, payload, out)
    }

    /// Seals an acknowledgement.
    pub fn send_ack(&mut self, now_ms: u64, out: &mut [u8]) -> Result<usize, Error> {
        self.endpoint.send_ack(now_ms, out)
    }

    /// Marks every message below `next` as stored durably, so it is acknowledged.
    pub fn acknowledge(&mut self, next: u64) {
        self.endpoint.stream.acknowledge(next);
    }

    /// True when the device confirmed a session, so this side can send.
    pub fn is_established(&self) -> bool {
        self.endpoint.session.is_established()
    }

    /// Health of the channel given the longest silence allowed.
    pub fn health(&self, now_ms: u64, max_silence_ms: u64) -> Health {
        self.endpoint.health(now_ms, max_silence_ms)
    }

    /// Sequence-number state, to persist.
    pub fn stream(&self) -> &StreamState {
        &self.endpoint.stream
    }

    /// Key id of the device.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}
