/* template.h — compiles an op file's kernels twice, for float and for double.
 * An op file defines CN_TEMPLATE_FILE as its own name and includes this header; when it is
 * included again with CN_REAL defined, only its kernel section (after `#else`) is compiled.
 * CN_FN(name) gives name_f32 / name_f64: a kernel defined as CN_FN(relu_forward) is
 * relu_forward_f32 and relu_forward_f64, and both full names stand in its op's table
 * (`.forward = { relu_forward_f32, relu_forward_f64 }`), so grep finds the kernel by either. */
#ifndef CN_TEMPLATE_FILE
#error "define CN_TEMPLATE_FILE before including template.h"
#endif

#define CN_REAL float
#define CN_FN(name) name##_f32
#include CN_TEMPLATE_FILE
#undef CN_REAL
#undef CN_FN

#define CN_REAL double
#define CN_FN(name) name##_f64
#include CN_TEMPLATE_FILE
#undef CN_REAL
#undef CN_FN

#undef CN_TEMPLATE_FILE
