//! Emulated Bluetooth LE link over a loopback TCP stream.
//!
//! Each packet on the stream is one length byte followed by that many bytes, between 1
//! and the link MTU. [`BleLink`] carries packets, and [`FrameLink`] carries whole tunnel
//! frames over it, split and joined by [`medtunnel_proto::fragment`]. Both ends, the
//! simulated device and the relay, use the same types.

use std::io;
use std::net::SocketAddr;

use medtunnel_proto::fragment::{
    FragmentError, Fragmenter, Reassembler, MAX_LINK_MTU, MIN_LINK_MTU,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, trace};

use crate::MAX_FRAME_LEN;

/// Length in bytes of the prefix in front of each packet on the stream.
const LENGTH_PREFIX_LEN: usize = 1;

// The length prefix is one byte, so it must be able to carry every MTU.
const _: () = assert!(MAX_LINK_MTU <= u8::MAX as usize);

/// Failure of the emulated Bluetooth LE link, by who is to blame.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// Caller misuse: the MTU is outside the range a Bluetooth LE link carries.
    #[error("invalid link MTU {mtu}: expected {MIN_LINK_MTU}..={MAX_LINK_MTU} bytes")]
    InvalidMtu {
        /// MTU that was passed, in bytes.
        mtu: usize,
    },
    /// Caller misuse: the emulated link only connects to loopback addresses.
    #[error(
        "address {addr} is not a loopback address; the emulated link uses 127.0.0.0/8 or ::1 only"
    )]
    NotLoopback {
        /// Address that was passed.
        addr: SocketAddr,
    },
    /// Caller misuse: the packet is empty or longer than the link MTU.
    #[error("invalid packet length {len}: expected 1..={mtu} bytes")]
    InvalidPacketLength {
        /// Packet length in bytes.
        len: usize,
        /// Link MTU in bytes.
        mtu: usize,
    },
    /// Caller misuse: the frame is empty or longer than [`MAX_FRAME_LEN`].
    #[error("invalid frame length {len}: expected 1..={max} bytes")]
    InvalidFrameLength {
        /// Frame length in bytes.
        len: usize,
        /// Maximum frame length in bytes.
        max: usize,
    },
    /// Caller misuse: the fragmenter rejected the frame.
    #[error("fragmentation failed: {0}")]
    Fragment(FragmentError),
    /// Peer fault: a length prefix of 0 or above the MTU. The link is closed.
    #[error("peer sent invalid packet length {len} on a link with MTU {mtu} bytes")]
    PeerPacketLength {
        /// Length prefix that was received.
        len: usize,
        /// Link MTU in bytes.
        mtu: usize,
    },
    /// Peer fault: the stream ended inside a packet.
    #[error("link closed inside a packet, {missing} bytes missing")]
    TruncatedPacket {
        /// Number of bytes that never arrived.
        missing: usize,
    },
    /// Local or network failure of the underlying TCP stream.
    #[error("link I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// One end of an emulated Bluetooth LE link that carries packets of 1..=MTU bytes.
///
/// [`recv_packet`](Self::recv_packet) is cancel-safe: a partly received packet stays
/// buffered, so the call can sit in a `tokio::select!` branch.
#[derive(Debug)]
pub struct BleLink {
    stream: TcpStream,
    mtu: usize,
    peer: SocketAddr,
    /// Bytes read from the stream that do not yet form a whole packet.
    pending: Vec<u8>,
    /// Set after a protocol error or end of stream, so later calls report a closed link.
    closed: bool,
}

impl BleLink {
    /// Connects to the link end listening at `addr`, which must be a loopback address.
    pub async fn connect(addr: SocketAddr, mtu: usize) -> Result<Self, BleError> {
        if !addr.ip().is_loopback() {
            return Err(BleError::NotLoopback { addr });
        }
        check_mtu(mtu)?;
        let stream = TcpStream::connect(addr).await?;
        Self::from_stream(stream, mtu)
    }

    /// Accepts the next connection on `listener` as a link end.
    pub async fn accept(listener: &TcpListener, mtu: usize) -> Result<Self, BleError> {
        check_mtu(mtu)?;
        let (stream, _) = listener.accept().await?;
        Self::from_stream(stream, mtu)
    }

    /// Wraps a connected TCP stream as a link end.
    pub fn from_stream(stream: TcpStream, mtu: usize) -> Result<Self, BleError> {
        check_mtu(mtu)?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        Ok(BleLink {
            stream,
            mtu,
            peer,
            pending: Vec::with_capacity(LENGTH_PREFIX_LEN + MAX_LINK_MTU),
            closed: false,
        })
    }

    /// Returns the link MTU in bytes: the maximum packet length.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Returns the address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one packet of 1..=MTU bytes.
    pub async fn send_packet(&mut self, packet: &[u8]) -> Result<(), BleError> {
        let mut wire = Vec::with_capacity(LENGTH_PREFIX_LEN + packet.len());
        encode_packet(packet, self.mtu, &mut wire)?;
        self.stream.write_all(&wire).await?;
        Ok(())
    }

    /// Receives the next packet, or `None` once the peer closed the link cleanly.
    ///
    /// A length prefix of 0 or above the MTU is a peer fault: the link is shut down, the
    /// fault is logged at debug level and returned as [`BleError::PeerPacketLength`].
    pub async fn recv_packet(&mut self) -> Result<Option<Vec<u8>>, BleError> {
        loop {
            if self.closed {
                return Ok(None);
            }
            if let Some(packet) = self.take_packet()? {
                return Ok(Some(packet));
            }
            self.fill_pending().await?;
        }
    }

    /// Removes one whole packet from `pending`, if there is one.
    fn take_packet(&mut self) -> Result<Option<Vec<u8>>, BleError> {
        let Some(&prefix) = self.pending.first() else {
            return Ok(None);
        };
        let len = usize::from(prefix);
        if len == 0 || len > self.mtu {
            self.closed = true;
            self.pending.clear();
            debug!(peer = %self.peer, len, mtu = self.mtu, "closing link after invalid packet length");
            return Err(BleError::PeerPacketLength { len, mtu: self.mtu });
        }
        if self.pending.len() < LENGTH_PREFIX_LEN + len {
            return Ok(None);
        }
        let packet = self.pending[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + len].to_vec();
        self.pending.drain(..LENGTH_PREFIX_LEN + len);
        trace!(peer = %self.peer, len, "received packet");
        Ok(Some(packet))
    }

    /// Reads more bytes into `pending`. `AsyncReadExt::read` is cancel-safe, so a
    /// cancelled call loses no bytes.
    async fn fill_pending(&mut self) -> Result<(), BleError> {
        let mut chunk = [0u8; LENGTH_PREFIX_LEN + MAX_LINK_MTU];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            self.closed = true;
            if self.pending.is_empty() {
                return Ok(());
            }
            let missing = LENGTH_PREFIX_LEN + usize::from(self.pending[0]) - self.pending.len();
            self.pending.clear();
            debug!(peer = %self.peer, missing, "link closed inside a packet");
            return Err(BleError::TruncatedPacket { missing });
        }
        self.pending.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

/// Tunnel frames over a [`BleLink`], fragmented to the link MTU.
///
/// Each sent frame takes the next message id, wrapping after 255. Rejected fragments on
/// receive are counted and skipped: the sender retransmits what never arrived.
/// [`recv_frame`](Self::recv_frame) is cancel-safe.
#[derive(Debug)]
pub struct FrameLink {
    link: BleLink,
    reassembler: Box<Reassembler<MAX_FRAME_LEN>>,
    next_message_id: u8,
    fragments_rejected: u64,
}

impl FrameLink {
    /// Carries frames over `link`.
    pub fn new(link: BleLink) -> Self {
        FrameLink {
            link,
            reassembler: Box::new(Reassembler::new()),
            next_message_id: 0,
            fragments_rejected: 0,
        }
    }

    /// Returns the underlying packet link.
    pub fn link(&self) -> &BleLink {
        &self.link
    }

    /// Returns the number of received packets that the reassembler rejected.
    pub fn fragments_rejected(&self) -> u64 {
        self.fragments_rejected
    }

    /// Sends one frame of 1..=[`MAX_FRAME_LEN`] bytes as one or more packets.
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<(), BleError> {
        if frame.is_empty() || frame.len() > MAX_FRAME_LEN {
            return Err(BleError::InvalidFrameLength {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let message_id = self.next_message_id;
        self.next_message_id = message_id.wrapping_add(1);

        let mtu = self.link.mtu;
        let mut fragmenter = Fragmenter::new(frame, mtu, message_id).map_err(BleError::Fragment)?;
        let mut wire = Vec::with_capacity(fragmenter.packet_count() * (LENGTH_PREFIX_LEN + mtu));
        let mut packet = [0u8; MAX_LINK_MTU];
        while let Some(len) = fragmenter
            .next_packet(&mut packet)
            .map_err(BleError::Fragment)?
        {
            encode_packet(&packet[..len], mtu, &mut wire)?;
        }
        self.link.stream.write_all(&wire).await?;
        trace!(peer = %self.link.peer, message_id, len = frame.len(), "sent frame");
        Ok(())
    }

    /// Receives the next whole frame, or `None` once the peer closed the link cleanly.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, BleError> {
        loop {
            let Some(packet) = self.link.recv_packet().await? else {
                return Ok(None);
            };
            match self.reassembler.push(&packet) {
                Ok(Some(frame)) => return Ok(Some(frame.to_vec())),
                Ok(None) => {}
                Err(error) => {
                    self.fragments_rejected += 1;
                    debug!(
                        peer = %self.link.peer,
                        len = packet.len(),
                        %error,
                        rejected_total = self.fragments_rejected,
                        "rejected fragment"
                    );
                }
            }
        }
    }
}

/// Appends `packet` with its length prefix to `wire`.
fn encode_packet(packet: &[u8], mtu: usize, wire: &mut Vec<u8>) -> Result<(), BleError> {
    if packet.is_empty() || packet.len() > mtu {
        return Err(BleError::InvalidPacketLength {
            len: packet.len(),
            mtu,
        });
    }
    // `packet.len()` is at most `mtu`, which `check_mtu` bounds by MAX_LINK_MTU (244).
    wire.push(packet.len() as u8);
    wire.extend_from_slice(packet);
    Ok(())
}

fn check_mtu(mtu: usize) -> Result<(), BleError> {
    if (MIN_LINK_MTU..=MAX_LINK_MTU).contains(&mtu) {
        Ok(())
    } else {
        Err(BleError::InvalidMtu { mtu })
    }
}
