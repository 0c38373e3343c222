//! AFL++ target `policy`: see `maildlp_fuzz::targets::policy`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::policy(data));
}
