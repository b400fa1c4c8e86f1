//! Known-answer tests for the primitives under the seal.

use opticon::crypto::{hmac_sha256, SealKey};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt (and F.5.6, its inverse).
#[test]
fn aes256_ctr_nist_sp800_38a_f55() {
    let key: [u8; 32] = hex("603deb1015ca71be2b73aef0857d7781 1f352c073b6108d72d9810a30914dff4")
        .try_into()
        .unwrap();
    let iv: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap();
    let plain = hex(
        "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
         30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
    );
    let cipher = hex(
        "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
         2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6",
    );
    let seal = SealKey::with_raw_cipher_key(&key);
    let mut data = plain.clone();
    seal.apply_keystream_iv(&iv, &mut data);
    assert_eq!(data, cipher);
    seal.apply_keystream_iv(&iv, &mut data);
    assert_eq!(data, plain);
}

/// RFC 4231 test cases 1-4, 6 and 7 (full output) and 5 (truncated to 128
/// bits, as the datagram tag is).
#[test]
fn hmac_sha256_rfc4231() {
    let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
        (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (
            hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (key, data, want) in cases {
        assert_eq!(hmac_sha256(&key, &[&data]).to_vec(), hex(want));
    }
    let truncated = hmac_sha256(&[0x0c; 20], &[b"Test With Truncation"]);
    assert_eq!(
        truncated[..16].to_vec(),
        hex("a3b6167473100ee06e0c796c2955552b")
    );
}
