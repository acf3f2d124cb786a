// A conv's weights as the forward weights of its input gradient, defined once for the kernels
// that read them so (conv2d_transpose_weights, conv2d_pack_input's TRANSPOSED packing). For
// stride 1, dx is the conv of dy with the kernel flipped and the channel axes swapped within
// each group; for stride S, each stride phase of dx is such a conv with only the taps k = k0,
// k0 + step, ... (those with k*D % S == r), flipped. Element (g*CIN_G + ci, co, ty, tx) of the
// transposition (Cin, Cout/g, th, tw) is w[g*COUT_G + co, ci, K0Y + (th-1-ty)*STEP_Y,
// K0X + (tw-1-tx)*STEP_X] of w (Cout, Cin/g, KH, KW). The shape is pipeline constants
// (`kernels::conv::transpose_constants`): the index arithmetic divides by constants.
override CIN_G: u32 = 1u;
override COUT_G: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override K0Y: u32 = 0u;
override STEP_Y: u32 = 1u;
override K0X: u32 = 0u;
override STEP_X: u32 = 1u;

// The index in w of element (cin, co, ty, tx) of the transposition, th x tw taps.
fn transposed_weight_at(cin: u32, co: u32, ty: u32, tx: u32, th: u32, tw: u32) -> u32 {
    let group = cin / CIN_G;
    let ky = K0Y + (th - 1u - ty) * STEP_Y;
    let kx = K0X + (tw - 1u - tx) * STEP_X;
    return (((group * COUT_G + co) * CIN_G + cin % CIN_G) * KH + ky) * KW + kx;
}
