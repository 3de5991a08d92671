// Behavioural model of the Lattice ECP5 DP16KD block RAM (16 Kbit, two ports), for gate-level
// simulation of synthesized netlists; yosys' cells_sim.v declares it only as a black box.
// Covered: equal data widths 1/2/4/9/18 on both ports, REGMODE NOREG (read data after the
// read edge) and OUTREG (one more register, enabled by OCE), WRITEMODE NORMAL /
// WRITETHROUGH / READBEFOREWRITE, x18 byte enables on AD[1:0], output reset RST
// (synchronous; an asserted RST with RESETMODE ASYNC stops), chip selects against CSDECODE. Anything else stops the
// simulation with $fatal, so a netlist never runs on a guess.
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter DIA17MUX = "DIA17", DIA16MUX = "DIA16", DIA15MUX = "DIA15", DIA14MUX = "DIA14";
  parameter DIA13MUX = "DIA13", DIA12MUX = "DIA12", DIA11MUX = "DIA11", DIA10MUX = "DIA10";
  parameter DIA9MUX = "DIA9", DIA8MUX = "DIA8", DIA7MUX = "DIA7", DIA6MUX = "DIA6";
  parameter DIA5MUX = "DIA5", DIA4MUX = "DIA4", DIA3MUX = "DIA3", DIA2MUX = "DIA2";
  parameter DIA1MUX = "DIA1", DIA0MUX = "DIA0";
  parameter ADA13MUX = "ADA13", ADA12MUX = "ADA12", ADA11MUX = "ADA11", ADA10MUX = "ADA10";
  parameter ADA9MUX = "ADA9", ADA8MUX = "ADA8", ADA7MUX = "ADA7", ADA6MUX = "ADA6";
  parameter ADA5MUX = "ADA5", ADA4MUX = "ADA4", ADA3MUX = "ADA3", ADA2MUX = "ADA2";
  parameter ADA1MUX = "ADA1", ADA0MUX = "ADA0";
  parameter CEAMUX = "CEA", OCEAMUX = "OCEA", CLKAMUX = "CLKA", WEAMUX = "WEA", RSTAMUX = "RSTA";
  parameter CSA2MUX = "CSA2", CSA1MUX = "CSA1", CSA0MUX = "CSA0";
  parameter DIB17MUX = "DIB17", DIB16MUX = "DIB16", DIB15MUX = "DIB15", DIB14MUX = "DIB14";
  parameter DIB13MUX = "DIB13", DIB12MUX = "DIB12", DIB11MUX = "DIB11", DIB10MUX = "DIB10";
  parameter DIB9MUX = "DIB9", DIB8MUX = "DIB8", DIB7MUX = "DIB7", DIB6MUX = "DIB6";
  parameter DIB5MUX = "DIB5", DIB4MUX = "DIB4", DIB3MUX = "DIB3", DIB2MUX = "DIB2";
  parameter DIB1MUX = "DIB1", DIB0MUX = "DIB0";
  parameter ADB13MUX = "ADB13", ADB12MUX = "ADB12", ADB11MUX = "ADB11", ADB10MUX = "ADB10";
  parameter ADB9MUX = "ADB9", ADB8MUX = "ADB8", ADB7MUX = "ADB7", ADB6MUX = "ADB6";
  parameter ADB5MUX = "ADB5", ADB4MUX = "ADB4", ADB3MUX = "ADB3", ADB2MUX = "ADB2";
  parameter ADB1MUX = "ADB1", ADB0MUX = "ADB0";
  parameter CEBMUX = "CEB", OCEBMUX = "OCEB", CLKBMUX = "CLKB", WEBMUX = "WEB", RSTBMUX = "RSTB";
  parameter CSB2MUX = "CSB2", CSB1MUX = "CSB1", CSB0MUX = "CSB0";
  parameter WID = 0;
  parameter GSR = "ENABLED";
  parameter INITVAL_00 = 320'b0; parameter INITVAL_01 = 320'b0; parameter INITVAL_02 = 320'b0;
  parameter INITVAL_03 = 320'b0; parameter INITVAL_04 = 320'b0; parameter INITVAL_05 = 320'b0;
  parameter INITVAL_06 = 320'b0; parameter INITVAL_07 = 320'b0; parameter INITVAL_08 = 320'b0;
  parameter INITVAL_09 = 320'b0; parameter INITVAL_0A = 320'b0; parameter INITVAL_0B = 320'b0;
  parameter INITVAL_0C = 320'b0; parameter INITVAL_0D = 320'b0; parameter INITVAL_0E = 320'b0;
  parameter INITVAL_0F = 320'b0; parameter INITVAL_10 = 320'b0; parameter INITVAL_11 = 320'b0;
  parameter INITVAL_12 = 320'b0; parameter INITVAL_13 = 320'b0; parameter INITVAL_14 = 320'b0;
  parameter INITVAL_15 = 320'b0; parameter INITVAL_16 = 320'b0; parameter INITVAL_17 = 320'b0;
  parameter INITVAL_18 = 320'b0; parameter INITVAL_19 = 320'b0; parameter INITVAL_1A = 320'b0;
  parameter INITVAL_1B = 320'b0; parameter INITVAL_1C = 320'b0; parameter INITVAL_1D = 320'b0;
  parameter INITVAL_1E = 320'b0; parameter INITVAL_1F = 320'b0; parameter INITVAL_20 = 320'b0;
  parameter INITVAL_21 = 320'b0; parameter INITVAL_22 = 320'b0; parameter INITVAL_23 = 320'b0;
  parameter INITVAL_24 = 320'b0; parameter INITVAL_25 = 320'b0; parameter INITVAL_26 = 320'b0;
  parameter INITVAL_27 = 320'b0; parameter INITVAL_28 = 320'b0; parameter INITVAL_29 = 320'b0;
  parameter INITVAL_2A = 320'b0; parameter INITVAL_2B = 320'b0; parameter INITVAL_2C = 320'b0;
  parameter INITVAL_2D = 320'b0; parameter INITVAL_2E = 320'b0; parameter INITVAL_2F = 320'b0;
  parameter INITVAL_30 = 320'b0; parameter INITVAL_31 = 320'b0; parameter INITVAL_32 = 320'b0;
  parameter INITVAL_33 = 320'b0; parameter INITVAL_34 = 320'b0; parameter INITVAL_35 = 320'b0;
  parameter INITVAL_36 = 320'b0; parameter INITVAL_37 = 320'b0; parameter INITVAL_38 = 320'b0;
  parameter INITVAL_39 = 320'b0; parameter INITVAL_3A = 320'b0; parameter INITVAL_3B = 320'b0;
  parameter INITVAL_3C = 320'b0; parameter INITVAL_3D = 320'b0; parameter INITVAL_3E = 320'b0;
  parameter INITVAL_3F = 320'b0;
  parameter INIT_DATA = "STATIC";

  localparam W = DATA_WIDTH_A;
  // address bits below the word address: x18 -> 4 (AD[1:0] byte enables), x9 -> 3, ...
  localparam LOW = (W == 18) ? 4 : (W == 9) ? 3 : (W == 4) ? 2 : (W == 2) ? 1 : 0;
  localparam DEPTH = 1 << (14 - LOW);

  reg [W-1:0] mem [0:DEPTH-1];
  integer k;
  initial begin
    if (DATA_WIDTH_A != DATA_WIDTH_B || !(W == 1 || W == 2 || W == 4 || W == 9 || W == 18))
      $fatal(1, "DP16KD model: data widths %0d/%0d not covered", DATA_WIDTH_A, DATA_WIDTH_B);
    if ((REGMODE_A != "NOREG" && REGMODE_A != "OUTREG") ||
        (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG"))
      $fatal(1, "DP16KD model: REGMODE %s/%s not covered", REGMODE_A, REGMODE_B);
    if (CLKAMUX != "CLKA" || CLKBMUX != "CLKB" || CEAMUX != "CEA" || CEBMUX != "CEB" ||
        OCEAMUX != "OCEA" || OCEBMUX != "OCEB" || WEAMUX != "WEA" || WEBMUX != "WEB" ||
        RSTAMUX != "RSTA" || RSTBMUX != "RSTB")
      $fatal(1, "DP16KD model: inverted or constant control muxes are not covered");
    for (k = 0; k < DEPTH; k = k + 1) mem[k] = {W{1'b0}};
  end

  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  // CSDECODE is a string "0bxyz": bit 0 of each of its last three characters
  function [2:0] decode(input [8*5-1:0] s);
    decode = {s[16], s[8], s[0]};
  endfunction
  wire hit_a = ({CSA2, CSA1, CSA0} == decode(CSDECODE_A));
  wire hit_b = ({CSB2, CSB1, CSB0} == decode(CSDECODE_B));

  // the word after a write of `di` over `old` (x18: AD[0] enables bits 8:0, AD[1] 17:9)
  function [W-1:0] merged(input [W-1:0] old, input [17:0] di, input [1:0] be);
    reg [17:0] word;
    begin
      word = old;
      if (W == 18) begin
        if (be[0]) word[8:0] = di[8:0];
        if (be[1]) word[17:9] = di[17:9];
      end else
        word = di;
      merged = word[W-1:0];
    end
  endfunction

  reg [W-1:0] lat_a = 0, lat_b = 0, out_a = 0, out_b = 0;
  wire [13-LOW:0] wa = ada[13:LOW], wb = adb[13:LOW];

  always @(posedge CLKA) begin
    if (RSTA) begin lat_a <= 0; out_a <= 0; end
    else begin
      if (OCEA) out_a <= lat_a;
      if (CEA && hit_a) begin
        if (WEA) mem[wa] <= merged(mem[wa], dia, ada[1:0]);
        if (!WEA || WRITEMODE_A == "READBEFOREWRITE") lat_a <= mem[wa];
        else if (WRITEMODE_A == "WRITETHROUGH") lat_a <= merged(mem[wa], dia, ada[1:0]);
      end
    end
  end
  always @(posedge CLKB) begin
    if (RSTB) begin lat_b <= 0; out_b <= 0; end
    else begin
      if (OCEB) out_b <= lat_b;
      if (CEB && hit_b) begin
        if (WEB) mem[wb] <= merged(mem[wb], dib, adb[1:0]);
        if (!WEB || WRITEMODE_B == "READBEFOREWRITE") lat_b <= mem[wb];
        else if (WRITEMODE_B == "WRITETHROUGH") lat_b <= merged(mem[wb], dib, adb[1:0]);
      end
    end
  end
  // an asynchronous output reset is not modelled: stop rather than guess
  always @(posedge RSTA or posedge RSTB)
    if (RESETMODE == "ASYNC") $fatal(1, "DP16KD model: asynchronous RST is not covered");

  wire [W-1:0] doa = (REGMODE_A == "OUTREG") ? out_a : lat_a;
  wire [W-1:0] dob = (REGMODE_B == "OUTREG") ? out_b : lat_b;
  wire [17:0] doa18 = doa, dob18 = dob;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa18;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob18;
endmodule
