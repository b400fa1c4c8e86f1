//! `opticon-collector`: the receiving daemon (see `opticon::collector`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::collector::run(&args));
}
