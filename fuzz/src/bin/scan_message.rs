//! AFL++ target `scan_message`: see `maildlp_fuzz::targets::scan_message`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::scan_message(data));
}
