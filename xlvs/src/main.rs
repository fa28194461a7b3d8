fn main() -> std::process::ExitCode {
    xlvs::main()
}
