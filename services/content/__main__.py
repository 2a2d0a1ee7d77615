from services.content.main import main

main()
