from kreplay.cli import main

main()
