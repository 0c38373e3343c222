//! AFL++ target `pdf`: see `maildlp_fuzz::targets::pdf`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::pdf(data));
}
