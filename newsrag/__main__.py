from newsrag.cli.main import main

main()
