//! AFL++ target `zip`: see `maildlp_fuzz::targets::zip`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::zip(data));
}
