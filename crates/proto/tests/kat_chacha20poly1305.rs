//! ChaCha20-Poly1305 known answers from RFC 8439, run against every provider.
//!
//! The providers take a Noise nonce: four zero bytes, then a 64-bit counter in
//! little-endian order. The Appendix A.5 vector has that layout, so it runs through the
//! providers. The section 2.8.2 vector starts its nonce with `07 00 00 00`, which no
//! counter can produce, so it runs through the crates behind the providers
//! (`chacha20poly1305`, and `aws-lc-rs` with feature `aws-lc`) with the raw nonce.

use medtunnel_proto::crypto::{Cipher, CryptoError, CryptoProvider, SymmetricKey, TAG_LEN};

/// Runs each check once per provider: `RustCrypto` always, `AwsLc` with feature `aws-lc`.
macro_rules! provider_tests {
    ($($name:ident),* $(,)?) => {
        mod rustcrypto {
            $(#[test]
            fn $name() {
                super::$name(&medtunnel_proto::crypto::RustCrypto);
            })*
        }

        #[cfg(feature = "aws-lc")]
        mod awslc {
            $(#[test]
            fn $name() {
                super::$name(&medtunnel_proto::crypto::AwsLc);
            })*
        }
    };
}

provider_tests!(
    appendix_a5_opens,
    appendix_a5_seals,
    appendix_a5_rejects_modified_input,
);

/// An AEAD known answer: the ciphertext excludes the tag.
struct Vector {
    key: &'static str,
    nonce: &'static str,
    ad: &'static str,
    plaintext: &'static str,
    ciphertext: &'static str,
    tag: &'static str,
}

/// RFC 8439, section 2.8.2: the "sunscreen" AEAD example.
const SECTION_2_8_2: Vector = Vector {
    key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    nonce: "070000004041424344454647",
    ad: "50515253c0c1c2c3c4c5c6c7",
    plaintext: "4c616469657320616e642047656e746c656d656e206f662074686520636c6173\
                73206f66202739393a204966204920636f756c64206f6666657220796f75206f\
                6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73\
                637265656e20776f756c642062652069742e",
    ciphertext: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
                 3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
                 92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
                 3ff4def08e4b7a9de576d26586cec64b6116",
    tag: "1ae10b594f09e26a7e902ecbd0600691",
};

/// RFC 8439, Appendix A.5: the AEAD decryption example. Its nonce
/// `00000000 0102030405060708` is the Noise nonce of counter 0x0807060504030201.
const APPENDIX_A5: Vector = Vector {
    key: "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
    nonce: "000000000102030405060708",
    ad: "f33388860000000000004e91",
    plaintext: "496e7465726e65742d4472616674732061726520647261667420646f63756d65\
                6e74732076616c696420666f722061206d6178696d756d206f6620736978206d\
                6f6e74687320616e64206d617920626520757064617465642c207265706c6163\
                65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65\
                6e747320617420616e792074696d652e20497420697320696e617070726f7072\
                6961746520746f2075736520496e7465726e65742d4472616674732061732072\
                65666572656e6365206d6174657269616c206f7220746f206369746520746865\
                6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67\
                726573732e2fe2809d",
    ciphertext: "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2\
                 4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf\
                 332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855\
                 9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4\
                 b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e\
                 af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a\
                 0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10\
                 49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29\
                 a6ad5cb4022b02709b",
    tag: "eead9d67890cbb22392336fea1851f38",
};

fn decode(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).expect("test vector is valid hex")
}

fn key_of(vector: &Vector) -> SymmetricKey {
    let key: [u8; 32] = decode(vector.key).try_into().expect("key has 32 bytes");
    SymmetricKey::from_bytes(key)
}

fn tag_of(vector: &Vector) -> [u8; TAG_LEN] {
    decode(vector.tag).try_into().expect("tag has 16 bytes")
}

/// Returns the counter whose Noise nonce equals the vector's nonce, if there is one.
fn noise_counter(vector: &Vector) -> Option<u64> {
    let nonce = decode(vector.nonce);
    let (zeros, counter) = nonce.split_at(4);
    if zeros != [0u8; 4] {
        return None;
    }
    let counter: [u8; 8] = counter.try_into().expect("nonce has 12 bytes");
    Some(u64::from_le_bytes(counter))
}

#[test]
fn nonce_layout_of_vectors() {
    assert_eq!(noise_counter(&APPENDIX_A5), Some(0x0807_0605_0403_0201));
    assert_eq!(noise_counter(&SECTION_2_8_2), None);
}

fn appendix_a5_opens<P: CryptoProvider>(provider: &P) {
    let cipher = provider.cipher(&key_of(&APPENDIX_A5));
    let counter = noise_counter(&APPENDIX_A5).expect("Noise nonce layout");
    let mut buf = decode(APPENDIX_A5.ciphertext);

    let result = cipher.open(
        counter,
        &decode(APPENDIX_A5.ad),
        &mut buf,
        &tag_of(&APPENDIX_A5),
    );

    assert_eq!(result, Ok(()));
    assert_eq!(hex::encode(&buf), APPENDIX_A5.plaintext);
}

fn appendix_a5_seals<P: CryptoProvider>(provider: &P) {
    let cipher = provider.cipher(&key_of(&APPENDIX_A5));
    let counter = noise_counter(&APPENDIX_A5).expect("Noise nonce layout");
    let mut buf = decode(APPENDIX_A5.plaintext);

    let tag = cipher.seal(counter, &decode(APPENDIX_A5.ad), &mut buf);

    assert_eq!(hex::encode(&buf), APPENDIX_A5.ciphertext);
    assert_eq!(hex::encode(tag), APPENDIX_A5.tag);
}

/// A flipped bit in the ciphertext, the associated data or the tag, or a different
/// counter, each makes opening fail.
fn appendix_a5_rejects_modified_input<P: CryptoProvider>(provider: &P) {
    let cipher = provider.cipher(&key_of(&APPENDIX_A5));
    let counter = noise_counter(&APPENDIX_A5).expect("Noise nonce layout");
    let ad = decode(APPENDIX_A5.ad);
    let ciphertext = decode(APPENDIX_A5.ciphertext);
    let tag = tag_of(&APPENDIX_A5);

    let mut buf = ciphertext.clone();
    buf[100] ^= 0x01;
    let flipped_ciphertext = cipher.open(counter, &ad, &mut buf, &tag);
    assert_eq!(flipped_ciphertext, Err(CryptoError::TagMismatch));

    let mut flipped_ad = ad.clone();
    flipped_ad[0] ^= 0x80;
    let mut buf = ciphertext.clone();
    let flipped_ad = cipher.open(counter, &flipped_ad, &mut buf, &tag);
    assert_eq!(flipped_ad, Err(CryptoError::TagMismatch));

    let mut flipped_tag = tag;
    flipped_tag[TAG_LEN - 1] ^= 0x01;
    let mut buf = ciphertext.clone();
    let flipped_tag = cipher.open(counter, &ad, &mut buf, &flipped_tag);
    assert_eq!(flipped_tag, Err(CryptoError::TagMismatch));

    let mut buf = ciphertext.clone();
    let next_counter = cipher.open(counter + 1, &ad, &mut buf, &tag);
    assert_eq!(next_counter, Err(CryptoError::TagMismatch));
}

/// Seals and opens a vector through the `chacha20poly1305` crate with its raw nonce.
#[test]
fn section_2_8_2_chacha20poly1305_crate() {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;

    let vector = &SECTION_2_8_2;
    let key: [u8; 32] = decode(vector.key).try_into().expect("key has 32 bytes");
    let nonce: [u8; 12] = decode(vector.nonce).try_into().expect("nonce has 12 bytes");
    let ad = decode(vector.ad);
    let aead = ChaCha20Poly1305::new(&key.into());

    let mut buf = decode(vector.plaintext);
    let tag = aead
        .encrypt_in_place_detached(&nonce.into(), &ad, &mut buf)
        .expect("message fits the keystream");
    assert_eq!(hex::encode(&buf), vector.ciphertext);
    assert_eq!(hex::encode(tag), vector.tag);

    let opened = aead.decrypt_in_place_detached(&nonce.into(), &ad, &mut buf, &tag);
    assert!(opened.is_ok());
    assert_eq!(hex::encode(&buf), vector.plaintext);
}

/// Seals and opens a vector through `aws-lc-rs` with its raw nonce.
#[cfg(feature = "aws-lc")]
#[test]
fn section_2_8_2_aws_lc_rs() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

    let vector = &SECTION_2_8_2;
    let key = UnboundKey::new(&CHACHA20_POLY1305, &decode(vector.key)).expect("32-byte key");
    let aead = LessSafeKey::new(key);
    let nonce = || Nonce::try_assume_unique_for_key(&decode(vector.nonce)).expect("12 bytes");
    let ad = decode(vector.ad);

    let mut buf = decode(vector.plaintext);
    let tag = aead
        .seal_in_place_separate_tag(nonce(), Aad::from(&ad), &mut buf)
        .expect("message fits the keystream");
    assert_eq!(hex::encode(&buf), vector.ciphertext);
    assert_eq!(hex::encode(tag.as_ref()), vector.tag);

    let opened = aead.open_in_place_separate_tag(nonce(), Aad::from(&ad), tag.as_ref(), &mut buf);
    assert!(opened.is_ok());
    assert_eq!(hex::encode(&buf), vector.plaintext);
}
