//! AFL++ target `web_forms`: see `maildlp_fuzz::targets::web_forms`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::web_forms(data));
}
