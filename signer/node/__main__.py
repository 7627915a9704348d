from signer.node.server import main

main()
