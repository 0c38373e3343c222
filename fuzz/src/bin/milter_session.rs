//! AFL++ target `milter_session`: see `maildlp_fuzz::targets::milter_session`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::milter_session(data));
}
