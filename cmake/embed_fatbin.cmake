# Writes the fatbin IN as the C array cn_cuda_fatbin in OUT (the CUDA backend loads it with
# cuModuleLoadData; 8-byte aligned, as the driver reads its headers in place).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* generated from kernels.cu by cmake/embed_fatbin.cmake: do not edit */\n#include <stddef.h>\n"
     "_Alignas(8) const unsigned char cn_cuda_fatbin[] = {\n${body}\n};\n"
     "const size_t cn_cuda_fatbin_size = ${bytes};\n")
