//! The channel core against snow 0.10, measured in the same process.
//!
//! Every group times our code and snow on the same work, so the ratio of the two means
//! stays meaningful on a shared, noisy machine even when the absolute times drift.
//! The clock is the CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time, because on a machine where other processes compete for the cores, wall time
//! also counts the time slices in which the thread was not running.
//!
//! Fairness rules that hold across all groups:
//!
//! - Both sides draw each ephemeral key from the operating system (`getrandom`): snow
//!   through its default resolver, ours through `rand::rngs::OsRng`.
//! - Handshakes carry empty payloads, and the raw Noise layer and snow hash a prologue of
//!   the same length as the medtunnel prologue.
//! - Buffers are allocated once, outside the timed code.
//! - The peer's half of a handshake runs untimed: the initiator groups time message 1
//!   plus message 2 with `iter_custom`, and the responder groups reuse one message 1.
//!   Each of the two timed parts reads the thread clock twice, a system call of well under
//!   a microsecond that snow and our code pay alike.
//! - Building snow's `HandshakeState` is timed, because snow needs a new one for every
//!   handshake. It derives the static public key, one fixed-base scalar multiplication
//!   that our code does once per key pair.
//!
//! Run with `cargo bench -p medtunnel-proto --features aws-lc --bench channel`. Without
//! the feature the AwsLc entries are left out.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use medtunnel_proto::crypto::{
    CryptoProvider, RustCrypto, SecretKey, SharedSecret, SymmetricKey, DH_LEN, TAG_LEN,
};
use medtunnel_proto::handshake::{self, CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::noise::{self, HandshakeOutput, StaticKeys, MESSAGE1_LEN, MESSAGE2_LEN};
use medtunnel_proto::transport::{Limits, Session};
use medtunnel_proto::wire::{INITIATION_LEN, MAX_FRAME_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroize;

#[cfg(feature = "aws-lc")]
use medtunnel_proto::crypto::AwsLc;

/// CPU time consumed by the calling thread, as criterion's clock.
struct ThreadCpuTime;

/// Source of criterion's duration formatting, which `ThreadCpuTime` reuses.
static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time() - start
    }

    fn add(&self, first: &Duration, second: &Duration) -> Duration {
        *first + *second
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

/// Reads `CLOCK_THREAD_CPUTIME_ID`.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    // The kernel returns a non-negative time with fewer than 10^9 nanoseconds.
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

const SNOW_PARAMS: &str = "Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s";
const DEVICE_SECRET: [u8; DH_LEN] = [2; DH_LEN];
const CLOUD_SECRET: [u8; DH_LEN] = [1; DH_LEN];
const PSK: [u8; 32] = [3; 32];
/// Prologue of the raw Noise and snow runs, 22 bytes like the medtunnel prologue (label,
/// version, key id, cloud key id, counter).
const PROLOGUE: [u8; 22] = *b"medtunnel bench prolog";
const KEY_ID: u32 = 42;
const CLOUD_KEY_ID: u32 = 7;
/// Transport payload sizes in bytes: a small reading and a full record.
const PAYLOAD_SIZES: [usize; 2] = [32, 1024];

/// Keys of both sides for one provider, as the device and the cloud hold them.
struct Fixture<P> {
    provider: P,
    device: DeviceKeys,
    cloud: CloudKeys,
    peer: PeerKeys,
    /// DH(cloud static, device static), the value `PeerKeys` caches, for the raw layer.
    static_static: SharedSecret,
}

fn fixture<P: CryptoProvider>(provider: P) -> Fixture<P> {
    let cloud = CloudKeys::new(&provider, CLOUD_KEY_ID, SecretKey::from_bytes(CLOUD_SECRET));
    let device = DeviceKeys::new(
        &provider,
        KEY_ID,
        CLOUD_KEY_ID,
        SecretKey::from_bytes(DEVICE_SECRET),
        cloud.static_public,
        SymmetricKey::from_bytes(PSK),
    );
    let peer = PeerKeys::new(
        &provider,
        &cloud.static_secret,
        KEY_ID,
        CLOUD_KEY_ID,
        device.static_public,
        SymmetricKey::from_bytes(PSK),
    )
    .expect("device public key is not a low-order point");
    let static_static = provider
        .x25519(&cloud.static_secret, &device.static_public)
        .expect("device public key is not a low-order point");
    Fixture {
        provider,
        device,
        cloud,
        peer,
        static_static,
    }
}

impl<P: CryptoProvider> Fixture<P> {
    fn device_static_keys(&self) -> StaticKeys<'_> {
        StaticKeys {
            local_secret: &self.device.static_secret,
            local_public: &self.device.static_public,
            remote_public: &self.device.cloud_public,
            psk: &self.device.psk,
            static_static: None,
        }
    }

    fn cloud_static_keys(&self, cached: bool) -> StaticKeys<'_> {
        StaticKeys {
            local_secret: &self.cloud.static_secret,
            local_public: &self.cloud.static_public,
            remote_public: &self.device.static_public,
            psk: &self.device.psk,
            static_static: cached.then_some(&self.static_static),
        }
    }

    /// Runs the cloud's half of a framed handshake on `initiation`.
    fn respond(&self, initiation: &[u8], response: &mut [u8]) -> HandshakeOutput {
        let verified = handshake::verify_mac1(&self.provider, &self.peer, initiation)
            .expect("initiation mac1 verifies");
        let (output, _) = handshake::respond(
            &self.provider,
            &self.cloud,
            &self.peer,
            verified,
            None,
            &mut OsRng,
            response,
        )
        .expect("responder accepts the initiation");
        output
    }

    /// Runs the cloud's half of a raw Noise handshake on `message1`.
    fn respond_raw(&self, cached: bool, message1: &[u8], message2: &mut [u8]) -> HandshakeOutput {
        let keys = self.cloud_static_keys(cached);
        let (ready, _) = noise::read_message1(&self.provider, &keys, &PROLOGUE, message1, &mut [])
            .expect("message 1 decrypts");
        let (output, _) = ready
            .write_message2(&self.provider, random_secret(), &[], message2)
            .expect("message 2 fits");
        output
    }
}

/// Draws a fresh X25519 secret from the operating system, as `handshake` does with the
/// RNG it receives.
fn random_secret() -> SecretKey {
    let mut bytes = [0u8; DH_LEN];
    OsRng.fill_bytes(&mut bytes);
    let secret = SecretKey::from_bytes(bytes);
    bytes.zeroize();
    secret
}

fn cloud_public_bytes() -> [u8; DH_LEN] {
    *RustCrypto
        .x25519_public(&SecretKey::from_bytes(CLOUD_SECRET))
        .as_bytes()
}

fn device_public_bytes() -> [u8; DH_LEN] {
    *RustCrypto
        .x25519_public(&SecretKey::from_bytes(DEVICE_SECRET))
        .as_bytes()
}

/// Builds snow's initiator or responder state for one handshake.
fn snow_state(initiator: bool) -> snow::HandshakeState {
    let params = SNOW_PARAMS.parse().expect("snow knows the protocol name");
    let (local_secret, remote_public) = if initiator {
        (DEVICE_SECRET, cloud_public_bytes())
    } else {
        (CLOUD_SECRET, device_public_bytes())
    };
    let builder = snow::Builder::new(params)
        .local_private_key(&local_secret)
        .and_then(|builder| builder.remote_public_key(&remote_public))
        .and_then(|builder| builder.psk(0, &PSK))
        .and_then(|builder| builder.prologue(&PROLOGUE))
        .expect("snow accepts the keys");
    if initiator {
        builder.build_initiator().expect("snow builds an initiator")
    } else {
        builder.build_responder().expect("snow builds a responder")
    }
}

fn handshake_initiator(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("handshake_initiator");
    group.bench_function("snow", |b| b.iter_custom(snow_initiator));
    ours_initiator(&mut group, "ours_rustcrypto", &fixture(RustCrypto));
    raw_initiator(&mut group, "noise_rustcrypto", &fixture(RustCrypto));
    #[cfg(feature = "aws-lc")]
    {
        ours_initiator(&mut group, "ours_awslc", &fixture(AwsLc));
        raw_initiator(&mut group, "noise_awslc", &fixture(AwsLc));
    }
    group.finish();
}

/// Times snow's `build_initiator`, message 1 and message 2 over `iterations` handshakes.
fn snow_initiator(iterations: u64) -> Duration {
    let mut message1 = [0u8; MESSAGE1_LEN];
    let mut message2 = [0u8; MESSAGE2_LEN];
    let mut payload = [0u8; 0];
    let mut timed = Duration::ZERO;
    for _ in 0..iterations {
        let start = thread_cpu_time();
        let mut initiator = snow_state(true);
        let len1 = initiator
            .write_message(&[], &mut message1)
            .expect("message 1");
        timed += thread_cpu_time() - start;

        let mut responder = snow_state(false);
        responder
            .read_message(&message1[..len1], &mut payload)
            .expect("snow reads message 1");
        let len2 = responder
            .write_message(&[], &mut message2)
            .expect("message 2");

        let start = thread_cpu_time();
        initiator
            .read_message(&message2[..len2], &mut payload)
            .expect("snow reads message 2");
        timed += thread_cpu_time() - start;
        black_box(&initiator);
    }
    timed
}

/// Times `initiate` and `PendingInitiation::complete`, with framing and mac1.
fn ours_initiator<P: CryptoProvider>(
    group: &mut BenchmarkGroup<'_, ThreadCpuTime>,
    name: &str,
    fixture: &Fixture<P>,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let mut initiation = [0u8; INITIATION_LEN];
            let mut response = [0u8; RESPONSE_LEN];
            let mut timed = Duration::ZERO;
            for counter in 0..iterations {
                let start = thread_cpu_time();
                let (pending, _) = handshake::initiate(
                    &fixture.provider,
                    &fixture.device,
                    counter as u32,
                    &mut OsRng,
                    &mut initiation,
                )
                .expect("initiation fits");
                timed += thread_cpu_time() - start;

                fixture.respond(&initiation, &mut response);

                let start = thread_cpu_time();
                let output = pending
                    .complete(&fixture.provider, &response)
                    .expect("initiator accepts the response");
                timed += thread_cpu_time() - start;
                black_box(output);
            }
            timed
        })
    });
}

/// Times `noise::write_message1` and `read_message2` without medtunnel's framing.
fn raw_initiator<P: CryptoProvider>(
    group: &mut BenchmarkGroup<'_, ThreadCpuTime>,
    name: &str,
    fixture: &Fixture<P>,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let keys = fixture.device_static_keys();
            let mut message1 = [0u8; MESSAGE1_LEN];
            let mut message2 = [0u8; MESSAGE2_LEN];
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                let start = thread_cpu_time();
                let (awaiting, _) = noise::write_message1(
                    &fixture.provider,
                    &keys,
                    &PROLOGUE,
                    random_secret(),
                    &[],
                    &mut message1,
                )
                .expect("message 1 fits");
                timed += thread_cpu_time() - start;

                fixture.respond_raw(true, &message1, &mut message2);

                let start = thread_cpu_time();
                let output = awaiting
                    .read_message2(&fixture.provider, &message2, &mut [])
                    .expect("message 2 decrypts");
                timed += thread_cpu_time() - start;
                black_box(output);
            }
            timed
        })
    });
}

fn handshake_responder(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("handshake_responder");
    snow_responder(&mut group);
    ours_responder(&mut group, "ours_rustcrypto", &fixture(RustCrypto));
    raw_responder(&mut group, "noise_rustcrypto", &fixture(RustCrypto), true);
    // Without the cached static-static DH the responder does four X25519 operations, as
    // snow does.
    raw_responder(
        &mut group,
        "noise_rustcrypto_uncached",
        &fixture(RustCrypto),
        false,
    );
    #[cfg(feature = "aws-lc")]
    {
        ours_responder(&mut group, "ours_awslc", &fixture(AwsLc));
        raw_responder(&mut group, "noise_awslc", &fixture(AwsLc), true);
    }
    group.finish();
}

/// Times snow's `build_responder`, reading message 1 and writing message 2.
fn snow_responder(group: &mut BenchmarkGroup<'_, ThreadCpuTime>) {
    let mut message1 = [0u8; MESSAGE1_LEN];
    let len1 = snow_state(true)
        .write_message(&[], &mut message1)
        .expect("message 1");
    let mut message2 = [0u8; MESSAGE2_LEN];
    let mut payload = [0u8; 0];
    group.bench_function("snow", |b| {
        b.iter_with_large_drop(|| {
            let mut responder = snow_state(false);
            responder
                .read_message(&message1[..len1], &mut payload)
                .expect("snow reads message 1");
            responder
                .write_message(&[], &mut message2)
                .expect("message 2");
            responder
        })
    });
}

/// Times `verify_mac1` and `respond` on one initiation frame.
fn ours_responder<P: CryptoProvider>(
    group: &mut BenchmarkGroup<'_, ThreadCpuTime>,
    name: &str,
    fixture: &Fixture<P>,
) {
    let mut initiation = [0u8; INITIATION_LEN];
    handshake::initiate(
        &fixture.provider,
        &fixture.device,
        1,
        &mut OsRng,
        &mut initiation,
    )
    .expect("initiation fits");
    let mut response = [0u8; RESPONSE_LEN];
    group.bench_function(name, |b| {
        b.iter_with_large_drop(|| fixture.respond(&initiation, &mut response))
    });
}

/// Times `noise::read_message1` and `write_message2` without medtunnel's framing.
fn raw_responder<P: CryptoProvider>(
    group: &mut BenchmarkGroup<'_, ThreadCpuTime>,
    name: &str,
    fixture: &Fixture<P>,
    cached: bool,
) {
    let mut message1 = [0u8; MESSAGE1_LEN];
    noise::write_message1(
        &fixture.provider,
        &fixture.device_static_keys(),
        &PROLOGUE,
        random_secret(),
        &[],
        &mut message1,
    )
    .expect("message 1 fits");
    let mut message2 = [0u8; MESSAGE2_LEN];
    group.bench_function(name, |b| {
        b.iter_with_large_drop(|| fixture.respond_raw(cached, &message1, &mut message2))
    });
}

fn transport(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("transport_seal_open");
    for size in PAYLOAD_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        snow_transport(&mut group, size);
        ours_transport(&mut group, "ours_rustcrypto", &fixture(RustCrypto), size);
        #[cfg(feature = "aws-lc")]
        ours_transport(&mut group, "ours_awslc", &fixture(AwsLc), size);
    }
    group.finish();
}

/// Times snow's `TransportState::write_message` on the initiator and `read_message` on
/// the responder for one payload of `size` bytes.
fn snow_transport(group: &mut BenchmarkGroup<'_, ThreadCpuTime>, size: usize) {
    let mut initiator = snow_state(true);
    let mut responder = snow_state(false);
    let mut message = [0u8; MAX_FRAME_LEN];
    let mut payload = [0u8; MAX_FRAME_LEN];
    let len = initiator
        .write_message(&[], &mut message)
        .expect("message 1");
    responder
        .read_message(&message[..len], &mut payload)
        .expect("snow reads message 1");
    let len = responder
        .write_message(&[], &mut message)
        .expect("message 2");
    initiator
        .read_message(&message[..len], &mut payload)
        .expect("snow reads message 2");
    let mut initiator = initiator.into_transport_mode().expect("handshake done");
    let mut responder = responder.into_transport_mode().expect("handshake done");

    let plaintext = vec![0x5a; size];
    group.bench_function(format!("snow/{size}"), |b| {
        b.iter(|| {
            let len = initiator
                .write_message(&plaintext, &mut message)
                .expect("payload fits");
            let opened = responder
                .read_message(&message[..len], &mut payload)
                .expect("snow opens its own message");
            black_box(&payload[..opened]);
        })
    });
}

/// Times `Session::seal` on the device and `Session::open` on the cloud for one record
/// of `size` bytes. The record is copied into the frame buffer first, as the caller does.
/// `open` leaves the plaintext in place, so nothing is copied out.
fn ours_transport<P: CryptoProvider>(
    group: &mut BenchmarkGroup<'_, ThreadCpuTime>,
    name: &str,
    fixture: &Fixture<P>,
    size: usize,
) {
    let mut initiation = [0u8; INITIATION_LEN];
    let (pending, _) = handshake::initiate(
        &fixture.provider,
        &fixture.device,
        1,
        &mut OsRng,
        &mut initiation,
    )
    .expect("initiation fits");
    let mut response = [0u8; RESPONSE_LEN];
    let cloud_output = fixture.respond(&initiation, &mut response);
    let device_output = pending
        .complete(&fixture.provider, &response)
        .expect("initiator accepts the response");

    let mut device = Session::new(Limits::default());
    device.install_initiator(&fixture.provider, &device_output, 0, 0);
    let mut cloud = Session::new(Limits::default());
    cloud.install_responder(&fixture.provider, &cloud_output, 0, 0);

    let plaintext = vec![0x5a; size];
    let mut frame = [0u8; MAX_FRAME_LEN];
    group.bench_function(format!("{name}/{size}"), |b| {
        b.iter(|| {
            frame[TRANSPORT_HEADER_LEN..][..size].copy_from_slice(&plaintext);
            let len = device.seal(0, &mut frame, size).expect("record fits");
            cloud
                .open(0, &mut frame[..len])
                .expect("cloud opens the device's frame");
            black_box(&frame[TRANSPORT_HEADER_LEN..len - TAG_LEN]);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = handshake_initiator, handshake_responder, transport
}
criterion_main!(benches);
