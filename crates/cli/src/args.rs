//! Value parsers shared by several subcommands.

use std::net::SocketAddr;

/// Parses a socket address and accepts only loopback addresses, because every service of
/// this build is for local operation and tests.
pub fn loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:8443"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; use 127.0.0.1 or [::1]"
        ));
    }
    Ok(addr)
}

/// Parses a replay speed: trace seconds per real second, finite and not negative.
pub fn speed(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number; expected a speed like 600"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "speed {value} must be a finite number of at least 0"
        ));
    }
    Ok(value)
}

/// Parses a count of readings per subject, 1 to 1,000,000.
pub fn reading_count(text: &str) -> Result<usize, String> {
    bounded_count(text, 1_000_000, "readings")
}

/// Parses a count of trace subjects, 1 to 1,000.
pub fn subject_count(text: &str) -> Result<usize, String> {
    bounded_count(text, 1_000, "subjects")
}

fn bounded_count(text: &str, max: usize, what: &str) -> Result<usize, String> {
    let value: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of {what}"))?;
    if value == 0 || value > max {
        return Err(format!("{value} {what} is outside 1..={max}"));
    }
    Ok(value)
}

/// Parses a probability in 0..=1.
pub fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number; expected a probability like 0.05"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{value} is outside 0..=1"));
    }
    Ok(value)
}

/// Parses a link MTU in 20..=244 bytes.
pub fn mtu(text: &str) -> Result<usize, String> {
    let value: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of bytes"))?;
    let range = medtunnel_proto::fragment::MIN_LINK_MTU..=medtunnel_proto::fragment::MAX_LINK_MTU;
    if !range.contains(&value) {
        return Err(format!(
            "MTU {value} is outside {}..={} bytes (Bluetooth LE packet sizes)",
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}
