from pycarp.cli import main

raise SystemExit(main())
