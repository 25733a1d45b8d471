//! Live interoperability of the raw Noise layer with `snow` 0.10 in both roles: complete
//! `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s` handshakes with payloads in both messages,
//! then transport messages both ways sealed and opened by our `Cipher` on one side and
//! snow's `TransportState` on the other (nonce = message index per direction, empty AD).

use medtunnel_proto::crypto::{
    Cipher, CryptoProvider, PublicKey, SecretKey, SymmetricKey, TAG_LEN,
};
use medtunnel_proto::noise::{self, HandshakeOutput, StaticKeys, PROTOCOL_NAME};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const PROLOGUE: &[u8] = b"medtunnel interop prologue";
const PSK: [u8; 32] = [0x5c; 32];
const INITIATOR_PAYLOAD: &[u8] = b"first message payload from the initiator";
const RESPONDER_PAYLOAD: &[u8] = b"second message payload, a little longer than the first";
/// Transport messages checked per direction.
const TRANSPORT_MESSAGES: u64 = 20;

/// Static key pairs of both sides, drawn from a seeded RNG.
struct Statics {
    initiator_secret: [u8; 32],
    responder_secret: [u8; 32],
}

impl Statics {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut initiator_secret = [0u8; 32];
        let mut responder_secret = [0u8; 32];
        rng.fill_bytes(&mut initiator_secret);
        rng.fill_bytes(&mut responder_secret);
        Statics {
            initiator_secret,
            responder_secret,
        }
    }
}

fn public_of<P: CryptoProvider>(provider: &P, secret: &[u8; 32]) -> PublicKey {
    provider.x25519_public(&SecretKey::from_bytes(*secret))
}

fn snow_builder<'a>(local_secret: &'a [u8; 32], remote_public: &'a PublicKey) -> snow::Builder<'a> {
    let params = std::str::from_utf8(PROTOCOL_NAME)
        .expect("protocol name is ASCII")
        .parse()
        .expect("snow knows the protocol name");
    snow::Builder::new(params)
        .local_private_key(local_secret)
        .and_then(|builder| builder.remote_public_key(remote_public.as_bytes()))
        .and_then(|builder| builder.psk(0, &PSK))
        .and_then(|builder| builder.prologue(PROLOGUE))
        .expect("snow accepts the keys")
}

fn random_ephemeral(rng: &mut StdRng) -> SecretKey {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    SecretKey::from_bytes(bytes)
}

/// Runs our initiator against a snow responder and returns both transport ends.
fn ours_to_snow<P: CryptoProvider>(
    provider: &P,
    seed: u64,
) -> (HandshakeOutput, snow::HandshakeState) {
    let statics = Statics::new(seed);
    let initiator_secret = SecretKey::from_bytes(statics.initiator_secret);
    let initiator_public = public_of(provider, &statics.initiator_secret);
    let responder_public = public_of(provider, &statics.responder_secret);
    let psk = SymmetricKey::from_bytes(PSK);
    let keys = StaticKeys {
        local_secret: &initiator_secret,
        local_public: &initiator_public,
        remote_public: &responder_public,
        psk: &psk,
        static_static: None,
    };
    let mut responder = snow_builder(&statics.responder_secret, &initiator_public)
        .build_responder()
        .expect("snow builds a responder");
    let mut rng = StdRng::seed_from_u64(seed ^ 1);

    let mut message1 = [0u8; 256];
    let (awaiting, len) = noise::write_message1(
        provider,
        &keys,
        PROLOGUE,
        random_ephemeral(&mut rng),
        INITIATOR_PAYLOAD,
        &mut message1,
    )
    .expect("our initiator writes message 1");
    assert_eq!(len, noise::MESSAGE1_LEN + INITIATOR_PAYLOAD.len());
    let mut payload = [0u8; 256];
    let read = responder
        .read_message(&message1[..len], &mut payload)
        .expect("snow reads our message 1");
    assert_eq!(&payload[..read], INITIATOR_PAYLOAD);

    let mut message2 = [0u8; 256];
    let len = responder
        .write_message(RESPONDER_PAYLOAD, &mut message2)
        .expect("snow writes message 2");
    let (output, read) = awaiting
        .read_message2(provider, &message2[..len], &mut payload)
        .expect("our initiator reads snow's message 2");
    assert_eq!(&payload[..read], RESPONDER_PAYLOAD);
    assert!(responder.is_handshake_finished());
    assert_eq!(&output.handshake_hash[..], responder.get_handshake_hash());
    (output, responder)
}

/// Runs a snow initiator against our responder and returns both transport ends.
fn snow_to_ours<P: CryptoProvider>(
    provider: &P,
    seed: u64,
) -> (HandshakeOutput, snow::HandshakeState) {
    let statics = Statics::new(seed);
    let responder_secret = SecretKey::from_bytes(statics.responder_secret);
    let responder_public = public_of(provider, &statics.responder_secret);
    let initiator_public = public_of(provider, &statics.initiator_secret);
    let psk = SymmetricKey::from_bytes(PSK);
    let keys = StaticKeys {
        local_secret: &responder_secret,
        local_public: &responder_public,
        remote_public: &initiator_public,
        psk: &psk,
        static_static: None,
    };
    let mut initiator = snow_builder(&statics.initiator_secret, &responder_public)
        .build_initiator()
        .expect("snow builds an initiator");
    let mut rng = StdRng::seed_from_u64(seed ^ 2);

    let mut message1 = [0u8; 256];
    let len = initiator
        .write_message(INITIATOR_PAYLOAD, &mut message1)
        .expect("snow writes message 1");
    let mut payload = [0u8; 256];
    let (ready, read) =
        noise::read_message1(provider, &keys, PROLOGUE, &message1[..len], &mut payload)
            .expect("our responder reads snow's message 1");
    assert_eq!(&payload[..read], INITIATOR_PAYLOAD);

    let mut message2 = [0u8; 256];
    let (output, len) = ready
        .write_message2(
            provider,
            random_ephemeral(&mut rng),
            RESPONDER_PAYLOAD,
            &mut message2,
        )
        .expect("our responder writes message 2");
    assert_eq!(len, noise::MESSAGE2_LEN + RESPONDER_PAYLOAD.len());
    let read = initiator
        .read_message(&message2[..len], &mut payload)
        .expect("snow reads our message 2");
    assert_eq!(&payload[..read], RESPONDER_PAYLOAD);
    assert!(initiator.is_handshake_finished());
    assert_eq!(&output.handshake_hash[..], initiator.get_handshake_hash());
    (output, initiator)
}

/// Payload of transport message `index`, of a length that varies with it.
fn transport_payload(index: u64) -> Vec<u8> {
    (0..(index * 13 % 100) as u8)
        .map(|byte| byte ^ index as u8)
        .collect()
}

/// Exchanges transport messages both ways between our keys and snow's transport state.
fn exchange_transport<P: CryptoProvider>(
    provider: &P,
    ours: &HandshakeOutput,
    snow: snow::HandshakeState,
) {
    let mut snow = snow.into_transport_mode().expect("handshake finished");
    let send = provider.cipher(&ours.send);
    let receive = provider.cipher(&ours.receive);
    for index in 0..TRANSPORT_MESSAGES {
        let payload = transport_payload(index);

        // Ours to snow.
        let mut message = payload.clone();
        let tag = send.seal(index, &[], &mut message);
        message.extend_from_slice(&tag);
        let mut opened = [0u8; 256];
        let len = snow
            .read_message(&message, &mut opened)
            .unwrap_or_else(|error| panic!("snow rejected our message {index}: {error}"));
        assert_eq!(
            &opened[..len],
            &payload[..],
            "our message {index} as snow read it"
        );

        // Snow to ours.
        let mut sealed = [0u8; 256];
        let len = snow
            .write_message(&payload, &mut sealed)
            .expect("snow seals a transport message");
        assert_eq!(len, payload.len() + TAG_LEN);
        let (body, tag) = sealed[..len].split_at_mut(payload.len());
        let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("tag length");
        receive
            .open(index, &[], body, &tag)
            .unwrap_or_else(|error| panic!("we rejected snow's message {index}: {error}"));
        assert_eq!(
            &body[..],
            &payload[..],
            "snow's message {index} as we read it"
        );
    }
}

/// A transport message from snow that was modified must not open under our keys.
fn modified_message_fails<P: CryptoProvider>(
    provider: &P,
    ours: &HandshakeOutput,
    snow: snow::HandshakeState,
) {
    let mut snow = snow.into_transport_mode().expect("handshake finished");
    let receive = provider.cipher(&ours.receive);
    let mut sealed = [0u8; 64];
    let len = snow
        .write_message(b"reading 153", &mut sealed)
        .expect("snow seals");
    sealed[3] ^= 0x01;
    let (body, tag) = sealed[..len].split_at_mut(len - TAG_LEN);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("tag length");
    assert!(receive.open(0, &[], body, &tag).is_err());
}

/// Runs every check for one provider.
fn check_provider<P: CryptoProvider>(provider: &P) {
    for seed in 0..4 {
        let (ours, snow) = ours_to_snow(provider, seed);
        exchange_transport(provider, &ours, snow);
        let (ours, snow) = snow_to_ours(provider, seed);
        exchange_transport(provider, &ours, snow);
    }
    let (ours, snow) = ours_to_snow(provider, 9);
    modified_message_fails(provider, &ours, snow);
    let (ours, snow) = snow_to_ours(provider, 9);
    modified_message_fails(provider, &ours, snow);
}

#[test]
fn rustcrypto_interoperates_with_snow() {
    check_provider(&medtunnel_proto::crypto::RustCrypto);
}

#[cfg(feature = "aws-lc")]
#[test]
fn awslc_interoperates_with_snow() {
    check_provider(&medtunnel_proto::crypto::AwsLc);
}

#[test]
fn wrong_psk_fails_against_snow() {
    let provider = medtunnel_proto::crypto::RustCrypto;
    let statics = Statics::new(5);
    let initiator_secret = SecretKey::from_bytes(statics.initiator_secret);
    let initiator_public = public_of(&provider, &statics.initiator_secret);
    let responder_public = public_of(&provider, &statics.responder_secret);
    let wrong_psk = SymmetricKey::from_bytes([0xa5; 32]);
    let keys = StaticKeys {
        local_secret: &initiator_secret,
        local_public: &initiator_public,
        remote_public: &responder_public,
        psk: &wrong_psk,
        static_static: None,
    };
    let mut responder = snow_builder(&statics.responder_secret, &initiator_public)
        .build_responder()
        .expect("snow builds a responder");
    let mut message1 = [0u8; 256];
    let mut rng = StdRng::seed_from_u64(5);
    let (_, len) = noise::write_message1(
        &provider,
        &keys,
        PROLOGUE,
        random_ephemeral(&mut rng),
        INITIATOR_PAYLOAD,
        &mut message1,
    )
    .expect("our initiator writes message 1");
    let mut payload = [0u8; 256];
    assert!(responder
        .read_message(&message1[..len], &mut payload)
        .is_err());
}
