//! The cacophony Noise test vectors for `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s`: both
//! handshake messages, the handshake hash and the transport messages, byte for byte.

use medtunnel_proto::crypto::{
    Cipher, CryptoProvider, PublicKey, RustCrypto, SecretKey, SymmetricKey, TAG_LEN,
};
use medtunnel_proto::noise::{read_message1, write_message1, HandshakeOutput, StaticKeys};
use serde::Deserialize;

const PROTOCOL: &str = "Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s";

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    protocol_name: String,
    init_prologue: String,
    init_psks: Option<Vec<String>>,
    init_static: Option<String>,
    init_ephemeral: String,
    init_remote_static: Option<String>,
    resp_prologue: String,
    resp_psks: Option<Vec<String>>,
    resp_static: Option<String>,
    resp_ephemeral: Option<String>,
    resp_remote_static: Option<String>,
    handshake_hash: Option<String>,
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    payload: String,
    ciphertext: String,
}

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/noise/cacophony.txt")
}

/// Loads the vectors for our protocol, or `None` (with a printed reason) outside CI
/// when the file is not there.
fn load_vectors() -> Option<Vec<Vector>> {
    let path = vectors_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("cacophony vectors missing at {}: {error}", path.display());
            }
            eprintln!(
                "skipped: cacophony vectors not found at {}: {error}",
                path.display()
            );
            return None;
        }
    };
    let file: VectorFile = serde_json::from_str(&text).expect("cacophony file is valid JSON");
    let vectors: Vec<Vector> = file
        .vectors
        .into_iter()
        .filter(|vector| vector.protocol_name == PROTOCOL)
        .collect();
    assert!(
        !vectors.is_empty(),
        "no {PROTOCOL} vector in {}",
        path.display()
    );
    Some(vectors)
}

fn bytes32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn run_vector<P: CryptoProvider>(provider: &P, vector: &Vector) {
    let init_secret = SecretKey::from_bytes(bytes32(vector.init_static.as_deref().unwrap()));
    let resp_secret = SecretKey::from_bytes(bytes32(vector.resp_static.as_deref().unwrap()));
    let init_public = provider.x25519_public(&init_secret);
    let resp_public = provider.x25519_public(&resp_secret);
    assert_eq!(
        resp_public.as_bytes(),
        &bytes32(vector.init_remote_static.as_deref().unwrap())
    );
    assert_eq!(
        init_public.as_bytes(),
        &bytes32(vector.resp_remote_static.as_deref().unwrap())
    );
    let init_psk = SymmetricKey::from_bytes(bytes32(&vector.init_psks.as_ref().unwrap()[0]));
    let resp_psk = SymmetricKey::from_bytes(bytes32(&vector.resp_psks.as_ref().unwrap()[0]));
    let init_keys = StaticKeys {
        local_secret: &init_secret,
        local_public: &init_public,
        remote_public: &resp_public,
        psk: &init_psk,
        static_static: None,
    };
    let cached = provider.x25519(&resp_secret, &init_public).unwrap();
    let resp_keys = StaticKeys {
        local_secret: &resp_secret,
        local_public: &resp_public,
        remote_public: &init_public,
        psk: &resp_psk,
        static_static: Some(&cached),
    };
    let init_prologue = hex::decode(&vector.init_prologue).unwrap();
    let resp_prologue = hex::decode(&vector.resp_prologue).unwrap();

    // Message 1, initiator to responder.
    let first = &vector.messages[0];
    let payload = hex::decode(&first.payload).unwrap();
    let mut wire = [0u8; 512];
    let (initiator, len) = write_message1(
        provider,
        &init_keys,
        &init_prologue,
        SecretKey::from_bytes(bytes32(&vector.init_ephemeral)),
        &payload,
        &mut wire,
    )
    .unwrap();
    assert_eq!(hex::encode(&wire[..len]), first.ciphertext, "message 1");
    let mut received = [0u8; 512];
    let (responder, payload_len) = read_message1(
        provider,
        &resp_keys,
        &resp_prologue,
        &wire[..len],
        &mut received,
    )
    .unwrap();
    assert_eq!(
        &received[..payload_len],
        payload.as_slice(),
        "message 1 payload"
    );

    // Message 2, responder to initiator.
    let second = &vector.messages[1];
    let payload = hex::decode(&second.payload).unwrap();
    let resp_ephemeral = vector.resp_ephemeral.as_deref().unwrap();
    let (resp_out, len) = responder
        .write_message2(
            provider,
            SecretKey::from_bytes(bytes32(resp_ephemeral)),
            &payload,
            &mut wire,
        )
        .unwrap();
    assert_eq!(hex::encode(&wire[..len]), second.ciphertext, "message 2");
    let (init_out, payload_len) = initiator
        .read_message2(provider, &wire[..len], &mut received)
        .unwrap();
    assert_eq!(
        &received[..payload_len],
        payload.as_slice(),
        "message 2 payload"
    );

    let expected_hash = vector.handshake_hash.as_deref().unwrap();
    assert_eq!(hex::encode(init_out.handshake_hash), expected_hash);
    assert_eq!(hex::encode(resp_out.handshake_hash), expected_hash);

    check_transport(provider, &vector.messages[2..], &init_out, &resp_out);
}

/// Transport messages alternate, starting with the initiator; each direction counts its
/// nonces from 0 and uses empty associated data.
fn check_transport<P: CryptoProvider>(
    provider: &P,
    messages: &[Message],
    initiator: &HandshakeOutput,
    responder: &HandshakeOutput,
) {
    let init_send = provider.cipher(&initiator.send);
    let resp_send = provider.cipher(&responder.send);
    let init_receive = provider.cipher(&initiator.receive);
    let resp_receive = provider.cipher(&responder.receive);
    let mut nonces = [0u64; 2];
    for (index, message) in messages.iter().enumerate() {
        let direction = index % 2;
        let (sender, receiver) = if direction == 0 {
            (&init_send, &resp_receive)
        } else {
            (&resp_send, &init_receive)
        };
        let payload = hex::decode(&message.payload).unwrap();
        let mut buf = payload.clone();
        let tag = sender.seal(nonces[direction], &[], &mut buf);
        let mut sealed = buf.clone();
        sealed.extend_from_slice(&tag);
        assert_eq!(
            hex::encode(&sealed),
            message.ciphertext,
            "transport {index}"
        );
        let tag: [u8; TAG_LEN] = tag;
        receiver
            .open(nonces[direction], &[], &mut buf, &tag)
            .unwrap();
        assert_eq!(buf, payload, "transport {index} payload");
        nonces[direction] += 1;
    }
}

#[test]
fn kkpsk0_vectors_rustcrypto() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    for vector in &vectors {
        run_vector(&RustCrypto, vector);
    }
}

#[cfg(feature = "aws-lc")]
#[test]
fn kkpsk0_vectors_aws_lc() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    for vector in &vectors {
        run_vector(&medtunnel_proto::crypto::AwsLc, vector);
    }
}

#[test]
fn public_key_type_round_trips() {
    let key = PublicKey::from_bytes([7u8; 32]);
    assert_eq!(key.as_bytes(), &[7u8; 32]);
}
