//! Keys as positions in the key space: how many keys probably lie between two keys, and the key
//! a given share of the way between them, from the spacing of keys on a page already listed.
//!
//! A range of a partitioned listing is one chain of continuation tokens, so a range of ten pages
//! takes ten round trips whatever else runs beside it: ranges must be a few pages each to be
//! listed at once, and a range's last request need not ask for a whole page past its end. Both
//! need an estimate of the keys between two keys. Here a key's characters from a depth on are read
//! as the digits of a fraction in base *alphabet size* (the characters seen in the listing so far),
//! so `obj/000012999` at the depth of `obj/00001` is 0.2999 over the digits; a page of 1,000 keys
//! spanning 0.2000-0.2999 says a key every 0.0001, and 0.7001 of it is left before the subtree ends.
//!
//! Estimates only shape the work: a boundary made here is just a string, and a range cut at any
//! string lists every key of it exactly once. Keys spread unevenly (names, dates, a few huge
//! prefixes) make uneven ranges or a range that ends early or late, never a wrong listing.
//! Not here: the probes that find a listing's structure when nothing is known of it (the subtree
//! splits of [`super`]).

use std::collections::BTreeSet;

/// Characters of a key read as digits: beyond this the weight of one step is below what an `f64`
/// resolves next to the leading digits, for most alphabets.
const PLACES: usize = 12;

/// The characters keys are read in, per character position (what the first pages of the listing
/// had there, and every digit where they had one), sorted: a key's position is its characters'
/// ranks among them, a mixed-radix fraction.
#[derive(Clone, Debug, Default)]
pub struct KeyScale {
    places: Vec<Vec<char>>,
    /// For positions past the longest key seen.
    any: Vec<char>,
}

/// How densely keys lie: the first and last keys of a full page and how many keys it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spacing {
    pub first: String,
    pub last: String,
    pub keys: usize,
}

impl KeyScale {
    /// The scale of keys like `keys`.
    pub fn learn<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut places: Vec<BTreeSet<char>> = Vec::new();
        let mut any = BTreeSet::new();
        for key in keys {
            for (i, c) in key.chars().enumerate() {
                if places.len() <= i {
                    places.push(BTreeSet::new());
                }
                places[i].insert(c);
                any.insert(c);
            }
        }
        // Ids count up: a position that had one digit in the first pages gets every digit later.
        let finish = |mut set: BTreeSet<char>| -> Vec<char> {
            if set.iter().any(char::is_ascii_digit) {
                set.extend('0'..='9');
            }
            set.into_iter().collect()
        };
        Self {
            places: places.into_iter().map(finish).collect(),
            any: finish(any),
        }
    }

    fn alphabet(&self, place: usize) -> &[char] {
        self.places.get(place).unwrap_or(&self.any)
    }

    /// `key` from character `depth` on as a fraction in `[0, 1]`. A character between two of its
    /// position's alphabet counts half way between them; one past every character there (such as
    /// the subtree end `char::MAX`) counts as every later key, so `stem` + `char::MAX` is 1.
    pub fn position(&self, key: &str, depth: usize) -> f64 {
        let (mut at, mut weight) = (0.0, 1.0);
        for (place, c) in key.chars().enumerate().skip(depth).take(PLACES) {
            let alphabet = self.alphabet(place);
            if alphabet.is_empty() {
                break;
            }
            let step = weight / alphabet.len() as f64;
            let rank = match alphabet.binary_search(&c) {
                Ok(i) => i as f64,
                Err(i) if i == alphabet.len() => return at + weight,
                Err(0) => 0.0,
                Err(i) => i as f64 - 0.5,
            };
            at += rank * step;
            weight = step;
        }
        at
    }

    /// The key below `stem` (a prefix of the keys) at fraction `at`, spelled until one step of
    /// its last character is finer than `resolution`.
    pub fn key_at(&self, stem: &str, at: f64, resolution: f64) -> String {
        let mut key = stem.to_string();
        let (mut rest, mut weight) = (at.clamp(0.0, 1.0), 1.0);
        for place in (stem.chars().count()..).take(PLACES) {
            let alphabet = self.alphabet(place);
            if alphabet.is_empty() {
                break;
            }
            let step = weight / alphabet.len() as f64;
            let digit = ((rest / step).floor().max(0.0) as usize).min(alphabet.len() - 1);
            key.push(alphabet[digit]);
            rest -= digit as f64 * step;
            weight = step;
            if weight <= resolution {
                break;
            }
        }
        key
    }

/// How many keys probably lie after `after` and up to `until`, from the spacing of a page;
    /// `None` where the page says nothing (one key, or all at one position).
    pub fn keys_between(&self, after: &str, until: &str, spacing: &Spacing) -> Option<f64> {
        let depth = common_prefix_chars(after, until);
        let per_key = self.per_key(spacing, depth)?;
        let span = self.position(until, depth) - self.position(after, depth);
        (span.is_finite() && span >= 0.0).then_some(span / per_key)
    }

    /// Boundaries cutting `(after, until]` into pieces of about `keys` keys each counted from
    /// `after` (the last piece takes what is left), at most `most` of them, ascending and strictly
    /// between the two (fewer where the estimate cannot tell keys apart).
    pub fn cuts(&self, after: &str, until: &str, spacing: &Spacing, keys: f64, most: usize) -> Vec<String> {
        let depth = common_prefix_chars(after, until);
        let Some(per_key) = self.per_key(spacing, depth) else {
            return Vec::new();
        };
        let (from, to) = (self.position(after, depth), self.position(until, depth));
        let stem: String = after.chars().take(depth).collect();
        let mut cuts: Vec<String> = Vec::new();
        for i in 1..=most {
            let at = from + per_key * keys * i as f64;
            // A last piece of a few keys would cost a request of its own: the one before takes them.
            if at + per_key * keys / 4.0 >= to {
                break;
            }
            let cut = self.key_at(&stem, at, per_key);
            let after_last = cuts.last().map_or(after, String::as_str);
            if cut.as_str() > after_last && cut.as_str() < until {
                cuts.push(cut);
            }
        }
        cuts
    }

    /// The distance between neighbouring keys at `depth`, as the page shows it.
    fn per_key(&self, spacing: &Spacing, depth: usize) -> Option<f64> {
        if spacing.keys < 2 {
            return None;
        }
        let span = self.position(&spacing.last, depth) - self.position(&spacing.first, depth);
        let per_key = span / (spacing.keys - 1) as f64;
        (per_key.is_finite() && per_key > 0.0).then_some(per_key)
    }
}

/// How many leading characters `a` and `b` share.
pub fn common_prefix_chars(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> KeyScale {
        let keys: Vec<String> = (0..2_000).map(|i| format!("obj/{i:09}")).collect();
        KeyScale::learn(keys.iter().map(String::as_str))
    }

    fn page(first: u32, last: u32) -> Spacing {
        Spacing {
            first: format!("obj/{first:09}"),
            last: format!("obj/{last:09}"),
            keys: (last - first + 1) as usize,
        }
    }

    #[test]
    fn positions_keep_the_order_of_keys() {
        let scale = KeyScale::learn(["a/", "b0", "a8", "a19"]);
        let mut keys = vec!["", "a", "a/", "a0", "a05", "a1", "a5", "a9", "a99", "a\u{10FFFF}", "b", "z"];
        keys.sort();
        let positions: Vec<f64> = keys.iter().map(|k| scale.position(k, 0)).collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{keys:?} {positions:?}");
        assert_eq!(scale.position("a\u{10FFFF}", 1), 1.0);
    }

    #[test]
    fn a_page_of_a_numeric_range_estimates_the_keys_left_in_its_subtree() {
        let scale = digits();
        let subtree_end = format!("obj/00001{}", char::MAX);
        // 12,999 seen; 13,000-19,999 left below `obj/00001`.
        let left = scale.keys_between("obj/000012999", &subtree_end, &page(12_000, 12_999)).unwrap();
        assert!((left - 7_001.0).abs() < 20.0, "{left}");
        // A page of another subtree spaced the same says the same.
        let left = scale.keys_between("obj/000012999", &subtree_end, &page(2_000, 2_999)).unwrap();
        assert!((left - 7_001.0).abs() < 20.0, "{left}");
        assert_eq!(scale.keys_between("a", "b", &Spacing { first: "x".into(), last: "x".into(), keys: 5 }), None);
    }

    #[test]
    fn cuts_split_a_range_into_even_pieces_between_its_ends() {
        let scale = digits();
        let subtree_end = format!("obj/00001{}", char::MAX);
        let cuts = scale.cuts("obj/000012999", &subtree_end, &page(12_000, 12_999), 1_750.0, 16);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        assert_eq!(scale.cuts("obj/000012999", &subtree_end, &page(12_000, 12_999), 1_750.0, 2).len(), 2);
        let mut bounds = vec!["obj/000012999".to_string()];
        bounds.extend(cuts);
        bounds.push(subtree_end.clone());
        let keys: Vec<String> = (10_000..20_000).map(|i| format!("obj/{i:09}")).collect();
        let sizes: Vec<usize> = bounds
            .windows(2)
            .map(|w| keys.iter().filter(|k| k.as_str() > w[0].as_str() && k.as_str() <= w[1].as_str()).count())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7_000);
        assert!(sizes.iter().all(|&n| (1_740..=1_760).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn a_scale_of_one_character_says_nothing() {
        let scale = KeyScale::learn(["a", "aa"]);
        assert_eq!(scale.position("aaa", 0), 0.0);
        assert!(scale.cuts("a", "b", &Spacing { first: "a".into(), last: "aa".into(), keys: 2 }, 10.0, 4).is_empty());
    }
}
