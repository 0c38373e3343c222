//! AFL++ target `gzip`: see `maildlp_fuzz::targets::gzip`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::gzip(data));
}
