from eventms.cli import main

main()
