//! Refusal of `JWT_SECRET`s that anyone can guess: whoever knows the
//! secret can sign access tokens for any user, role included.
//!
//! Refused, besides the contract's 32-byte minimum:
//! - the values published with the project (the old `.env.example` value,
//!   the tests' constants);
//! - a secret of fewer than [`MIN_DISTINCT_CHARS`] distinct characters
//!   (`aaaa…`, `abab…`, `0101…`);
//! - a secret that is one shorter pattern repeated (`0123456789abcdef` twice);
//! - a secret whose characters carry less than [`MIN_ESTIMATED_BITS`] bits
//!   by their own frequencies (length × the Shannon entropy of its character
//!   distribution): a generous estimate, which a random secret of 32 hex
//!   digits (`openssl rand -hex 16`) clears with room to spare, and which a
//!   long text of few letters does not.
//!
//! No rule can prove a secret random; these catch the trivial ones without
//! refusing what `openssl rand -hex 32` or `-base64 32` prints.

/// Published values: never a secret, whatever their length.
const PUBLISHED: &[&str] = &[
    // `.env.example` before `just dev` wrote random secrets.
    "dev-only-insecure-jwt-secret-never-use-outside-local-development",
    // The in-process tests' (`projects_testkit::TEST_JWT_SECRET`; a test
    // checks that it is this one).
    "projects-api test secret: never use in production",
    // The binary's tests before they used random secrets.
    "test-secret-test-secret-test-secret!",
    // The configuration tests' example.
    "0123456789abcdef0123456789abcdef",
];

/// The fewest distinct characters a secret may be made of. Random hex has
/// 16; a 32-character secret of 8 distinct characters is already
/// suspicious but can come from a generator.
pub const MIN_DISTINCT_CHARS: usize = 8;

/// The least estimated entropy, in bits (see the module documentation).
/// 32 random hex digits measure about 110–125 bits by this estimate.
pub const MIN_ESTIMATED_BITS: f64 = 96.0;

/// Why `secret` must not sign tokens, or `None` when no rule refuses it.
/// Never repeats the secret.
pub fn weakness(secret: &str) -> Option<String> {
    if PUBLISHED.contains(&secret) || PUBLISHED.contains(&secret.trim()) {
        return Some(
            "is a published value (an example or a test secret): generate your own with \
             `openssl rand -hex 32`"
                .into(),
        );
    }
    let chars: Vec<char> = secret.chars().collect();
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Some(format!(
            "uses only {} distinct characters (at least {MIN_DISTINCT_CHARS} needed): \
             generate one with `openssl rand -hex 32`",
            distinct.len()
        ));
    }
    if let Some(period) = repeated_pattern(&chars) {
        return Some(format!(
            "is a {period}-character pattern repeated: generate one with `openssl rand -hex 32`"
        ));
    }
    let bits = estimated_bits(&chars);
    if bits < MIN_ESTIMATED_BITS {
        return Some(format!(
            "is too predictable (about {bits:.0} bits by its character frequencies, at least \
             {MIN_ESTIMATED_BITS:.0} needed): generate one with `openssl rand -hex 32`"
        ));
    }
    None
}

/// The shortest period `p ≤ len / 2` such that the text is its first `p`
/// characters repeated (the last repetition may be cut short).
fn repeated_pattern(chars: &[char]) -> Option<usize> {
    (1..=chars.len() / 2).find(|&period| chars.iter().zip(&chars[period..]).all(|(a, b)| a == b))
}

/// Length × the Shannon entropy of the character distribution, in bits.
fn estimated_bits(chars: &[char]) -> f64 {
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in chars {
        *counts.entry(*c).or_default() += 1;
    }
    let total = chars.len() as f64;
    let per_char: f64 = counts
        .values()
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum();
    per_char * total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_and_trivial_secrets_are_refused() {
        for weak in [
            PUBLISHED[0],
            projects_testkit::TEST_JWT_SECRET,
            "test-secret-test-secret-test-secret!",
            &"a".repeat(32),
            &"a".repeat(200),
            &"ab".repeat(16),
            &"0123456789abcdef".repeat(2),
            "abcdefgabcdefgabcdefgabcdefgabcdefg",
            // 8 distinct letters, but mostly one of them.
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcdefgh",
        ] {
            assert!(weakness(weak).is_some(), "{weak:?} was accepted");
        }
    }

    #[test]
    fn random_secrets_are_accepted() {
        for strong in [
            // openssl rand -hex 32, -hex 16 and -base64 32
            "9f2c4e1a7b3d5f60812a4c6e8b0d2f41a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3",
            "4be1d07c9a2f63e85d1c7b0a9e4f2638",
            "q3Zt8VbN1xWm0RkLp7Hd2Ys5Gf9Jc4Ea6Ui/Ko+Tw8M=",
        ] {
            assert_eq!(weakness(strong), None, "{strong:?} was refused");
        }
    }

    #[test]
    fn the_reason_never_repeats_the_secret() {
        let secret = "b".repeat(40);
        let reason = weakness(&secret).expect("refused");
        assert!(!reason.contains(&secret));
    }
}
