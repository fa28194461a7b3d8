fn main() {
    keepalived::main()
}
