//! AFL++ target `smtp_session`: see `maildlp_fuzz::targets::smtp_session`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::smtp_session(data));
}
