//! `opticon-api`: the HTTP JSON API daemon (see `opticon::api`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::api::run(&args));
}
