from bpjax.play.cli import main

main()
