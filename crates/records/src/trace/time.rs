//! Conversion between Unix seconds and `YYYY-MM-DD HH:MM:SS` in UTC, with the proleptic
//! Gregorian calendar and without leap seconds (as Unix time itself).

const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01.
const DAYS_TO_UNIX_EPOCH: i64 = 719_468;
/// Days in a 400-year Gregorian cycle.
const DAYS_PER_ERA: i64 = 146_097;

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC, the timestamp format of the
/// iglu CSV files, so that output can be compared with an input file line by line.
pub fn format_time(time_s: i64) -> String {
    let days = time_s.div_euclid(SECONDS_PER_DAY);
    let second_of_day = time_s.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Parses `YYYY-MM-DD HH:MM:SS` as UTC into Unix seconds. On failure, returns why.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 19
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            10 => *byte == b' ',
            13 | 16 => *byte == b':',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return Err("it does not have the form YYYY-MM-DD HH:MM:SS".to_owned());
    }
    // The shape check above makes every slice in range and all digits.
    let number = |range: core::ops::Range<usize>| -> i64 {
        bytes[range]
            .iter()
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'))
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));

    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} is not 01 to 12"));
    }
    let month_days = days_in_month(year, month);
    if !(1..=month_days).contains(&day) {
        return Err(format!(
            "day {day:02} is not 01 to {month_days} in {year:04}-{month:02}"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} is not 00:00:00 to 23:59:59"
        ));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Counts days from 1970-01-01 to the given date.
///
/// The year is counted from March, so that February, with its leap day, comes last and
/// the day of the year follows from the month by a linear formula.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let march_year = if month <= 2 { year - 1 } else { year };
    let era = march_year.div_euclid(400);
    let year_of_era = march_year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_TO_UNIX_EPOCH
}

/// Converts days since 1970-01-01 to (year, month, day), the inverse of
/// [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + DAYS_TO_UNIX_EPOCH;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    // Years of 365 days, corrected for the leap days of every 4th, 100th and 400th year.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_convert_both_ways() {
        let cases = [
            ("1970-01-01 00:00:00", 0),
            ("2015-06-06 16:50:27", 1_433_609_427),
            ("2000-02-29 12:00:00", 951_825_600),
            ("1969-12-31 23:59:59", -1),
            ("9999-12-31 23:59:59", 253_402_300_799),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse_time(text), Ok(seconds), "{text}");
            assert_eq!(format_time(seconds), text);
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        for days in start..end {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            assert!((1..=days_in_month(year, month)).contains(&day));
        }
    }

    #[test]
    fn parse_rejects_impossible_dates() {
        let cases = [
            ("2015-02-29 00:00:00", "day 29 is not 01 to 28 in 2015-02"),
            ("2015-13-01 00:00:00", "month 13 is not 01 to 12"),
            (
                "2015-06-06 24:00:00",
                "time 24:00:00 is not 00:00:00 to 23:59:59",
            ),
            (
                "2015-06-06T16:50:27",
                "it does not have the form YYYY-MM-DD HH:MM:SS",
            ),
            (
                "2015-6-6 16:50:27",
                "it does not have the form YYYY-MM-DD HH:MM:SS",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(parse_time(text), Err(reason.to_owned()), "{text}");
        }
    }

    #[test]
    fn format_handles_extreme_inputs() {
        assert!(format_time(i64::MAX).len() > 19);
        assert!(!format_time(i64::MIN).is_empty());
    }
}
