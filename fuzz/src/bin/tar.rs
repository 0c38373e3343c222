//! AFL++ target `tar`: see `maildlp_fuzz::targets::tar`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::tar(data));
}
