# Writes the text file IN as a C++ raw string literal to OUT (for `const char x[] = { #include OUT };`).
file(READ ${IN} text)
file(WRITE ${OUT} "R\"qopt_embed(${text})qopt_embed\"\n")
