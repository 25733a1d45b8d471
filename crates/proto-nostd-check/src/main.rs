//! A binary without `std`, `alloc` or a global allocator that runs a handshake and one
//! data message between a `DeviceChannel` and a `CloudChannel`, with the frame
//! fragmented and reassembled at the smallest Bluetooth LE MTU.
//!
//! It only links if `medtunnel-proto` and every dependency of it build without `std`
//! (otherwise a second `panic_impl` appears) and without `alloc` (otherwise the link
//! needs an allocator). It exits with status 0 when every step worked, 1 otherwise.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use medtunnel_proto::channel::{CloudChannel, DeviceChannel, DeviceResume};
use medtunnel_proto::crypto::{CryptoProvider, RustCrypto, SecretKey, SymmetricKey};
use medtunnel_proto::fragment::{Fragmenter, Reassembler, MIN_LINK_MTU};
use medtunnel_proto::handshake::{CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::stream::StreamState;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use rand_core::{CryptoRng, RngCore};

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("the entry point of this check is written for x86_64 Linux");

const DEVICE_KEY_ID: u32 = 42;
const CLOUD_KEY_ID: u32 = 7;
const READING: &[u8] = b"glucose 153 mg/dL";

/// SplitMix64: deterministic and NOT cryptographically secure. It only gives the
/// handshake the `CryptoRngCore` it requires, in a binary that never leaves this check.
struct SplitMix64(u64);

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SplitMix64 {}

/// Runs the exchange; `None` means a step failed.
fn run() -> Option<()> {
    let provider = RustCrypto;
    let cloud_keys = CloudKeys::new(&provider, CLOUD_KEY_ID, SecretKey::from_bytes([1; 32]));
    let device_secret = SecretKey::from_bytes([2; 32]);
    let device_public = provider.x25519_public(&device_secret);
    let peer = PeerKeys::new(
        &provider,
        &cloud_keys.static_secret,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        device_public,
        SymmetricKey::from_bytes([3; 32]),
    )
    .ok()?;
    let device_keys = DeviceKeys::new(
        &provider,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        device_secret,
        cloud_keys.static_public,
        SymmetricKey::from_bytes([3; 32]),
    );
    let limits = Limits::default();
    let mut device = DeviceChannel::new(provider, device_keys, limits, DeviceResume::default());
    let mut cloud = CloudChannel::new(provider, DEVICE_KEY_ID, limits, StreamState::default());
    let mut rng = SplitMix64(1);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let mut reply = [0u8; MAX_FRAME_LEN];

    // Handshake, confirmed by the device's first acknowledgement.
    let initiation = device.start_handshake(&mut rng, &mut frame).ok()?;
    let accepted = cloud
        .accept_initiation(
            0,
            &cloud_keys,
            &peer,
            &frame[..initiation.len],
            None,
            &mut rng,
            &mut reply,
        )
        .ok()?;
    let incoming = device.handle_frame(1, &mut reply[..accepted.len]).ok()?;
    if !incoming.handshake_completed {
        return None;
    }
    let len = device.send_ack(1, &mut frame).ok()?;
    cloud.handle_frame(2, &mut frame[..len]).ok()?;

    // One reading, carried over the link in 20-byte packets.
    let sent = device.send(3, READING, &mut frame).ok()?;
    let mut joined = [0u8; MAX_FRAME_LEN];
    let joined_len = fragment_and_join(&frame[..sent.len], &mut joined)?;
    let incoming = cloud.handle_frame(4, &mut joined[..joined_len]).ok()?;
    (incoming.data == Some((0, READING))).then_some(())
}

/// Sends `frame` through a fragmenter and a reassembler and copies the result to `out`.
fn fragment_and_join(frame: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut fragmenter = Fragmenter::new(frame, MIN_LINK_MTU, 9).ok()?;
    let mut reassembler = Reassembler::<MAX_FRAME_LEN>::new();
    let mut packet = [0u8; MIN_LINK_MTU];
    while let Some(len) = fragmenter.next_packet(&mut packet).ok()? {
        if let Some(joined) = reassembler.push(&packet[..len]).ok()? {
            out.get_mut(..joined.len())?.copy_from_slice(joined);
            return Some(joined.len());
        }
    }
    None
}

/// Entry point after `_start` aligned the stack.
extern "C" fn entry() -> ! {
    let status = match run() {
        Some(()) => 0,
        None => 1,
    };
    exit(status)
}

/// Ends the process with the Linux `exit_group` system call.
fn exit(status: i32) -> ! {
    // SAFETY: `exit_group` (60 on x86_64 is `exit`, 231 is `exit_group`) takes one integer
    // argument, touches no memory of this process and does not return.
    unsafe {
        core::arch::asm!("syscall", in("rax") 231, in("rdi") status, options(noreturn, nostack));
    }
}

// The kernel enters `_start` with a 16-byte aligned stack and no return address, while
// the C calling convention expects a call to have pushed one. This entry clears the frame
// pointer, realigns the stack and calls `entry`, which never returns.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

/// Never called, because every panic aborts. The precompiled `core` of this target is
/// built for unwinding, and its unoptimized code still refers to this symbol.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    exit(101)
}
