//! Copying text to the user's clipboard through the terminal with OSC 52: works over SSH and
//! without X, as long as the terminal emulator supports it (most do; some ask first).

use base64ct::{Base64, Encoding};

/// The escape sequence that asks the terminal to put `text` on the clipboard. Inside tmux the
/// sequence is wrapped so tmux passes it through to the outer terminal.
pub fn osc52(text: &str, inside_tmux: bool) -> Vec<u8> {
    let encoded = Base64::encode_string(text.as_bytes());
    let seq = format!("\x1b]52;c;{encoded}\x07");
    if inside_tmux {
        // tmux passthrough: DCS tmux; <sequence with ESC doubled> ST
        format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b")).into_bytes()
    } else {
        seq.into_bytes()
    }
}

/// Writes an escape sequence to the controlling terminal (`/dev/tty`), not to a redirected
/// stream: the clipboard request must reach the terminal emulator.
pub fn write_to_terminal(seq: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tty = std::fs::OpenOptions::new().write(true).open("/dev/tty")?;
    tty.write_all(seq)?;
    tty.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sequence_is_osc52_with_base64() {
        assert_eq!(osc52("hi", false), b"\x1b]52;c;aGk=\x07".to_vec());
    }

    #[test]
    fn tmux_wraps_and_doubles_escapes() {
        let s = String::from_utf8(osc52("hi", true)).unwrap();
        assert!(s.starts_with("\x1bPtmux;\x1b\x1b]52;c;aGk="));
        assert!(s.ends_with("\x07\x1b\\"));
    }
}
