# Turns a file into a NUL-terminated C string: -DIN= -DOUT= -DSYMBOL=
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} */\n#include <stddef.h>\nconst char ${SYMBOL}[] = {${body}0x00};\nconst size_t ${SYMBOL}_len = sizeof(${SYMBOL}) - 1;\n")
