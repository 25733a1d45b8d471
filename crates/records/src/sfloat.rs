//! The 16-bit SFLOAT of ISO/IEEE 11073-20601, which the Bluetooth CGM Service uses for
//! glucose concentration and trend.
//!
//! Bits 15..12 hold the exponent and bits 11..0 the mantissa, both two's complement, and
//! the value is `mantissa × 10^exponent`. Five mantissa values are special: 0x7FF is NaN,
//! 0x800 is NRes (not at this resolution), 0x7FE is +INFINITY, 0x802 is -INFINITY and
//! 0x801 is reserved. Finite values therefore have a mantissa in -2045..=2045.

/// Raw SFLOAT for NaN (exponent 0, mantissa 0x7FF).
pub(crate) const NAN: u16 = 0x07FF;
/// Raw SFLOAT for NRes, "not at this resolution" (mantissa 0x800).
pub(crate) const NRES: u16 = 0x0800;
/// Raw SFLOAT for +INFINITY (mantissa 0x7FE).
pub(crate) const POSITIVE_INFINITY: u16 = 0x07FE;
/// Raw SFLOAT for -INFINITY (mantissa 0x802).
pub(crate) const NEGATIVE_INFINITY: u16 = 0x0802;

const MANTISSA_MAX: i16 = 2045;
const EXPONENT_MIN: i8 = -8;
const EXPONENT_MAX: i8 = 7;

/// A decoded SFLOAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sfloat {
    Finite { mantissa: i16, exponent: i8 },
    NaN,
    NRes,
    PositiveInfinity,
    NegativeInfinity,
}

/// Splits a raw SFLOAT into its parts, or returns `None` for a reserved value.
pub(crate) fn decode(raw: u16) -> Option<Sfloat> {
    let mut exponent = (raw >> 12) as i8;
    if exponent > EXPONENT_MAX {
        exponent -= 16;
    }
    let mut mantissa = (raw & 0x0FFF) as i16;
    if mantissa >= 0x0800 {
        mantissa -= 0x1000;
    }
    if (-MANTISSA_MAX..=MANTISSA_MAX).contains(&mantissa) {
        return Some(Sfloat::Finite { mantissa, exponent });
    }
    // The special values are defined with exponent 0; any other exponent with one of
    // these mantissas is not a number the standard defines.
    match raw {
        NAN => Some(Sfloat::NaN),
        NRES => Some(Sfloat::NRes),
        POSITIVE_INFINITY => Some(Sfloat::PositiveInfinity),
        NEGATIVE_INFINITY => Some(Sfloat::NegativeInfinity),
        _ => None,
    }
}

/// Packs a finite value. The caller keeps `mantissa` in -2045..=2045 and `exponent` in
/// -8..=7.
fn pack(mantissa: i16, exponent: i8) -> u16 {
    ((exponent as u16 & 0x000F) << 12) | (mantissa as u16 & 0x0FFF)
}

/// Encodes `value` with the most precise exponent that fits, rounding half away from zero.
///
/// Values too large in magnitude become ±INFINITY; values smaller than 0.5e-8 become 0.
pub(crate) fn from_f32(value: f32) -> u16 {
    if value.is_nan() {
        return NAN;
    }
    let value = f64::from(value);
    for exponent in EXPONENT_MIN..=EXPONENT_MAX {
        let mantissa = (value * 10f64.powi(-i32::from(exponent))).round();
        if mantissa.abs() <= f64::from(MANTISSA_MAX) {
            // The range check above makes the cast exact.
            return pack_canonical(mantissa as i16, exponent);
        }
    }
    if value > 0.0 {
        POSITIVE_INFINITY
    } else {
        NEGATIVE_INFINITY
    }
}

/// Packs with trailing decimal zeros moved into the exponent, so that equal values have
/// one encoding.
fn pack_canonical(mut mantissa: i16, mut exponent: i8) -> u16 {
    if mantissa == 0 {
        return pack(0, 0);
    }
    while mantissa % 10 == 0 && exponent < EXPONENT_MAX {
        mantissa /= 10;
        exponent += 1;
    }
    pack(mantissa, exponent)
}

/// Converts a raw SFLOAT to `f32`: NaN and NRes become NaN, the infinities stay infinite.
/// Returns `None` for a reserved value.
pub(crate) fn to_f32(raw: u16) -> Option<f32> {
    let value = match decode(raw)? {
        Sfloat::Finite { mantissa, exponent } => {
            f64::from(mantissa) * 10f64.powi(i32::from(exponent))
        }
        Sfloat::NaN | Sfloat::NRes => f64::NAN,
        Sfloat::PositiveInfinity => f64::INFINITY,
        Sfloat::NegativeInfinity => f64::NEG_INFINITY,
    };
    Some(value as f32)
}

/// Encodes a whole number exactly, or returns `None` if no SFLOAT equals it
/// (for example 2051, which needs 4 significant digits above the mantissa limit).
pub(crate) fn from_whole(value: u16) -> Option<u16> {
    let mut mantissa = value;
    let mut exponent = 0i8;
    while mantissa > MANTISSA_MAX as u16 {
        if mantissa % 10 != 0 || exponent == EXPONENT_MAX {
            return None;
        }
        mantissa /= 10;
        exponent += 1;
    }
    // The loop leaves `mantissa` at most 2045, so the cast is exact.
    Some(pack(mantissa as i16, exponent))
}

/// Why a raw SFLOAT is not a whole, non-negative number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WholeError {
    Reserved,
    Special,
    Negative,
    NotWhole,
    TooLarge,
}

impl WholeError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            WholeError::Reserved => "it is a reserved SFLOAT value",
            WholeError::Special => "it is NaN, NRes or an infinity",
            WholeError::Negative => "it is negative",
            WholeError::NotWhole => "it is not a whole number",
            WholeError::TooLarge => "it is larger than the maximum",
        }
    }
}

/// Decodes a raw SFLOAT that must be a whole number in `0..=max`.
pub(crate) fn to_whole(raw: u16, max: u16) -> Result<u16, WholeError> {
    let (mantissa, exponent) = match decode(raw) {
        None => return Err(WholeError::Reserved),
        Some(Sfloat::Finite { mantissa, exponent }) => (i64::from(mantissa), exponent),
        Some(_) => return Err(WholeError::Special),
    };
    if mantissa < 0 {
        return Err(WholeError::Negative);
    }
    let scale = 10i64.pow(u32::from(exponent.unsigned_abs()));
    let value = if exponent >= 0 {
        // At most 2045 × 10^7, far inside i64.
        mantissa * scale
    } else if mantissa % scale == 0 {
        mantissa / scale
    } else {
        return Err(WholeError::NotWhole);
    };
    u16::try_from(value)
        .ok()
        .filter(|value| *value <= max)
        .ok_or(WholeError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_pack_with_exponent_zero() {
        assert_eq!(from_whole(0), Some(0x0000));
        assert_eq!(from_whole(153), Some(0x0099));
        assert_eq!(from_whole(2045), Some(0x07FD));
    }

    #[test]
    fn whole_numbers_above_mantissa_need_trailing_zero() {
        assert_eq!(from_whole(2050), Some(0x10CD));
        assert_eq!(from_whole(4000), Some(0x1190));
        assert_eq!(from_whole(2046), None);
        assert_eq!(from_whole(3999), None);
    }

    #[test]
    fn whole_decode_accepts_any_exact_representation() {
        // 1530 × 10^-1 is 153.
        assert_eq!(to_whole(pack(1530, -1), 4000), Ok(153));
        assert_eq!(to_whole(pack(4, 3), 4000), Ok(4000));
        assert_eq!(to_whole(pack(1535, -1), 4000), Err(WholeError::NotWhole));
        assert_eq!(to_whole(pack(-1, 0), 4000), Err(WholeError::Negative));
        assert_eq!(to_whole(pack(401, 1), 4000), Err(WholeError::TooLarge));
        assert_eq!(to_whole(pack(2045, 7), 4000), Err(WholeError::TooLarge));
        assert_eq!(to_whole(NAN, 4000), Err(WholeError::Special));
        assert_eq!(to_whole(0x0801, 4000), Err(WholeError::Reserved));
        assert_eq!(to_whole(0x17FF, 4000), Err(WholeError::Reserved));
    }

    #[test]
    fn float_encoding_keeps_four_digits() {
        assert_eq!(from_f32(1.5), pack(15, -1));
        assert_eq!(from_f32(-2.25), pack(-225, -2));
        assert_eq!(from_f32(0.0), 0x0000);
        assert_eq!(from_f32(-3.0), pack(-3, 0));
        assert_eq!(to_f32(from_f32(1.5)), Some(1.5));
        assert_eq!(to_f32(from_f32(-2.25)), Some(-2.25));
        assert_eq!(to_f32(from_f32(1.23456)), Some(1.235));
    }

    #[test]
    fn float_specials_round_trip() {
        assert_eq!(from_f32(f32::INFINITY), POSITIVE_INFINITY);
        assert_eq!(from_f32(f32::NEG_INFINITY), NEGATIVE_INFINITY);
        assert_eq!(from_f32(3.0e12), POSITIVE_INFINITY);
        assert!(to_f32(from_f32(f32::NAN)).is_some_and(f32::is_nan));
        assert!(to_f32(NRES).is_some_and(f32::is_nan));
        assert_eq!(to_f32(POSITIVE_INFINITY), Some(f32::INFINITY));
        assert_eq!(to_f32(0x0801), None);
    }
}
