//! Secure channel core of medtunnel.
//!
//! A `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s` tunnel between a medical device (initiator)
//! and its cloud (responder), with replay protection, rekeying, Bluetooth LE
//! fragmentation, size padding and a reliability layer of sequence numbers and
//! acknowledgements. The crate opens no socket, reads no clock and draws no randomness of
//! its own: bytes, the current time and a random number generator come in as arguments,
//! and bytes and events go out. It needs neither `std` nor `alloc`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod channel;
pub mod crypto;
pub mod error;
pub mod fragment;
pub mod handshake;
pub mod noise;
pub mod queue;
pub mod record;
pub mod replay;
pub mod stream;
pub mod transport;
pub mod wire;
