//! `opticon-db`: the database tool (see `opticon::dbtool`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::dbtool::run(&args));
}
