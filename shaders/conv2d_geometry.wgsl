// The geometry every conv2d kernel is specialised for, as override constants; prepended to the
// conv2d kernels by `kernels::shaders` (WGSL has no include). Kernel size, stride, padding and
// dilation per axis.
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
// The taps some output pixel reaches inside the image: [KY0, KY1) x [KX0, KX1); the others
// read only padding (a 3x3 conv on a 1x1 map uses its centre tap alone), so the kernels skip
// them.
override KY0: u32 = 0u;
override KY1: u32 = KH;
override KX0: u32 = 0u;
override KX1: u32 = KW;

